"""Shell completion: the hidden `__complete` command, `kubectl kubeless completion bash|zsh|fish`, and the reading
of a partial command line that both share with the "did you mean" of an unknown command.

`kubectl kubeless <TAB>` is kubectl's to complete: kubectl (1.26 and later) runs `kubectl_complete-kubeless` with the
words typed after `kubeless` (the last one being the word to complete) and reads cobra's `__complete` answer: one
candidate a line (optionally `candidate<TAB>description`), then `:<directive>`. That helper, shipped next to the
plugin, runs `kubectl-kubeless __complete WORDS...`, answered here. The candidates come from the argparse tree itself
(commands, flags, choices), the cluster (function and trigger names for the verbs that take one, function names after
a trigger's --function-name or --function, namespaces after -n), the kubeconfig (--context, --cluster, --user) and the
bundled runtime catalogue (after --runtime).

Nothing here prints an error: a completion that cannot reach the cluster offers nothing, and the shell goes on.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Protocol

from kubeless_api import resources, schema
from kubeless_api.catalogue import runtime_ids
from kubectl_kubeless import objects
from kubectl_kubeless.command import Factory, add_command
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.kube import GlobalOptions, kubeconfig_paths, merge_kubeconfigs
from kubectl_kubeless.manifests import load_catalogue
from kubectl_kubeless.trigger import verbs

# cobra's ShellCompDirective bits
DEFAULT = 0  # the shell may also offer files
ERROR = 1
NO_SPACE = 2
NO_FILE = 4

# What a parser's positional arguments name, set with parser.set_defaults(complete=...) where the command is
# defined: a Kubeless kind, whose objects in the namespace are offered.
FUNCTIONS = "Function"
# Flags whose value the shell completes as a file name.
FILE_DESTS = {"from_file", "dependencies", "kubeconfig", "payload_from_file"}
# Flags whose value comes from a Lister, by argparse dest.
LISTED_DESTS = {"runtime": "runtimes", "namespace": "namespaces", "kafka_namespace": "namespaces",
                "context": "contexts", "cluster": "clusters", "user": "users"}
# Flags whose value names a Kubeless object: its kind, by argparse dest (a trigger's function).
OBJECT_DESTS = {"function_name": FUNCTIONS, "function": FUNCTIONS}
# Flags that take a few values the command checks itself rather than argparse (which would answer a bad one with a
# usage error, not in Kubeless's words): the values, by argparse dest. A flag's own `choices` come first.
FIXED_VALUES = {"gateway": schema.GATEWAYS, "output": verbs.OUTPUTS}
COMPLETION_TIMEOUT = "5s"  # a TAB that hangs is worse than one that offers nothing


class Lister(Protocol):
    """Where completion candidates come from; tests hand in a fake."""

    def object_names(self, kind: str, values: dict[str, str]) -> list[str]: ...
    def namespaces(self, values: dict[str, str]) -> list[str]: ...
    def runtimes(self, values: dict[str, str]) -> list[str]: ...
    def contexts(self, values: dict[str, str]) -> list[str]: ...
    def clusters(self, values: dict[str, str]) -> list[str]: ...
    def users(self, values: dict[str, str]) -> list[str]: ...


# --- reading a command line --------------------------------------------------------------------------------------

@dataclass
class Position:
    """Where a (partial) command line stands: the command reached, the flag values seen, the positional words."""
    parser: argparse.ArgumentParser
    path: list[str] = field(default_factory=list)  # command names, e.g. ["function", "call"]
    values: dict[str, str] = field(default_factory=dict)  # argparse dest -> value (global flags among them)
    positionals: list[str] = field(default_factory=list)  # at the command reached
    pending: argparse.Action | None = None  # a flag still waiting for its value
    unknown: str | None = None  # a word where a command was expected, which is none


def subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def walk(parser: argparse.ArgumentParser, words: list[str]) -> Position:
    """Follow the words as argparse would, without failing on what is incomplete or wrong."""
    position = Position(parser)
    only_positionals = False
    for word in words:
        if position.pending is not None:
            position.values[position.pending.dest] = word
            position.pending = None
            continue
        if word == "--" and not only_positionals:
            only_positionals = True
            continue
        if word.startswith("-") and word != "-" and not only_positionals:
            flag, equals, value = word.partition("=")
            actions = position.parser._option_string_actions
            if flag in actions:
                if takes_value(actions[flag]):
                    if equals:
                        position.values[actions[flag].dest] = value
                    else:
                        position.pending = actions[flag]
            elif not word.startswith("--") and word[:2] in actions and takes_value(actions[word[:2]]):
                position.values[actions[word[:2]].dest] = word[2:].lstrip("=")  # -nteam, -n=team
            continue
        commands = subcommands(position.parser)
        if commands is not None and position.unknown is None:
            if word in commands.choices:
                position.parser = commands.choices[word]
                position.path.append(word)
                position.positionals = []
                continue
            position.unknown = word
        position.positionals.append(word)
    return position


def command_names(parser: argparse.ArgumentParser) -> list[tuple[str, list[str], str]]:
    """(name, aliases, help) of each visible subcommand, in the order they were added."""
    commands = subcommands(parser)
    if commands is None:
        return []
    aliases: dict[str, list[str]] = {}
    for name, sub in commands.choices.items():
        aliases.setdefault(id(sub), []).append(name)
    result = []
    for action in commands._choices_actions:
        names = aliases[id(commands.choices[action.dest])]
        result.append((action.dest, [n for n in names if n != action.dest], action.help or ""))
    return result


def suggestions(word: str, names: list[str]) -> list[str]:
    """The commands a mistyped word most likely meant: those it starts, then the close ones (difflib)."""
    import difflib  # noqa: PLC0415 - start-up: only a mistyped command pays for it (bench/plugin_startup.py)

    starts = [name for name in names if name.startswith(word)] if word else []
    close = difflib.get_close_matches(word, names, n=3, cutoff=0.6)
    return list(dict.fromkeys(starts + close))[:3]


# --- completing ------------------------------------------------------------------------------------------------

def visible_flags(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    flags = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        for option in action.option_strings:
            flags.append((option, (action.help or "").split("\n")[0]))
    return flags


def with_description(name: str, description: str) -> str:
    description = " ".join(description.split())
    return f"{name}\t{description}" if description else name


def complete(parser: argparse.ArgumentParser, words: list[str], lister: Lister) -> tuple[list[str], int]:
    """Candidates for the last word of `words` (the words after `kubeless`) and cobra's directive."""
    *before, current = words or [""]
    position = walk(parser, before)
    if position.pending is not None:  # `--runtime <TAB>`
        return flag_values(position.pending, current, "", position.values, lister)
    if current.startswith("--") and "=" in current:  # `--runtime=py<TAB>`
        flag, _, value = current.partition("=")
        action = position.parser._option_string_actions.get(flag)
        if action is None or not takes_value(action):
            return [], NO_FILE
        return flag_values(action, value, f"{flag}=", position.values, lister)
    if current.startswith("-"):
        return [with_description(f, d) for f, d in visible_flags(position.parser) if f.startswith(current)], NO_FILE
    if position.unknown is not None:
        return [], NO_FILE
    names = command_names(position.parser)
    if names:
        found = [with_description(n, h) for n, _, h in names if n.startswith(current)]
        found = found or [a for _, aliases, _ in names for a in aliases if a.startswith(current)]
        return found, NO_FILE
    return positional_values(position, current, lister)


def flag_values(action: argparse.Action, current: str, prefix: str, values: dict[str, str],
                lister: Lister) -> tuple[list[str], int]:
    fixed = action.choices or FIXED_VALUES.get(action.dest)
    if fixed:
        return [prefix + str(c) for c in fixed if str(c).startswith(current)], NO_FILE
    if action.dest in FILE_DESTS:
        return [], DEFAULT
    if action.dest in OBJECT_DESTS:
        names = lister.object_names(OBJECT_DESTS[action.dest], values)
    elif action.dest in LISTED_DESTS:
        names = getattr(lister, LISTED_DESTS[action.dest])(values)
    else:
        return [], NO_FILE
    return [prefix + n for n in names if n.startswith(current)], NO_FILE


def positional_values(position: Position, current: str, lister: Lister) -> tuple[list[str], int]:
    positional = [a for a in position.parser._actions if not a.option_strings]
    if not positional:
        return [], NO_FILE
    action = positional[min(len(position.positionals), len(positional) - 1)]
    if action.nargs in (None, "?") and len(position.positionals) >= len(positional):
        return [], NO_FILE  # every positional argument is given
    if action.choices:
        return [str(c) for c in action.choices if str(c).startswith(current)], NO_FILE
    kind = position.parser.get_default("complete")
    if kind is not None:
        given = set(position.positionals)
        names = lister.object_names(kind, position.values)
        return [n for n in names if n.startswith(current) and n not in given], NO_FILE
    return [], NO_FILE


# --- the real sources: the cluster, the kubeconfig, the bundled catalogue ----------------------------------------

class ClusterLister:
    """Names from the cluster and the kubeconfig that the typed flags point at (-n, --context, --kubeconfig, ...)."""

    def __init__(self, environ: dict[str, str]):
        self.environ = environ

    def factory(self, values: dict[str, str]) -> Factory:
        options = GlobalOptions(**{key: values.get(key) for key in ("kubeconfig", "context", "cluster", "user",
                                                                     "namespace")},
                                request_timeout=values.get("request_timeout") or COMPLETION_TIMEOUT)
        return Factory(options, environ=self.environ)

    def names(self, values: dict[str, str], path: str) -> list[str]:
        """metadata.name of every item of a list, asking the API server for metadata only."""
        try:
            items = objects.list_metadata(self.factory(values).client(), path)
            return sorted(item["metadata"]["name"] for item in items)
        except (UserError, OSError, ValueError, KeyError):
            return []

    def object_names(self, kind: str, values: dict[str, str]) -> list[str]:
        """The Kubeless objects of a kind (functions, triggers) in the namespace the flags name."""
        try:
            namespace = self.factory(values).namespace()
        except UserError:
            return []
        return self.names(values, objects.kubeless_path(kind, namespace))

    def namespaces(self, values: dict[str, str]) -> list[str]:
        return self.names(values, resources.path("v1", "Namespace"))

    def runtimes(self, values: dict[str, str]) -> list[str]:
        return runtime_ids(load_catalogue())

    def kubeconfig_section(self, values: dict[str, str], section: str) -> list[str]:
        import yaml  # noqa: PLC0415 - start-up: `version` and `--help` do not load PyYAML

        documents = []
        for path in kubeconfig_paths(values.get("kubeconfig"), self.environ):
            try:
                with open(path) as file:
                    documents.append(yaml.safe_load(file) or {})
            except (OSError, yaml.YAMLError):
                continue
        return sorted(merge_kubeconfigs(documents)[section])

    def contexts(self, values: dict[str, str]) -> list[str]:
        return self.kubeconfig_section(values, "contexts")

    def clusters(self, values: dict[str, str]) -> list[str]:
        return self.kubeconfig_section(values, "clusters")

    def users(self, values: dict[str, str]) -> list[str]:
        return self.kubeconfig_section(values, "users")


def run_complete(parser: argparse.ArgumentParser, words: list[str], write, environ: dict[str, str] | None = None,
                 lister: Lister | None = None) -> int:
    """`kubectl-kubeless __complete WORDS...`: candidates one a line, then `:<directive>`, as cobra prints them."""
    lister = lister or ClusterLister(dict(os.environ if environ is None else environ))
    candidates, directive = complete(parser, words, lister)
    write("".join(f"{c}\n" for c in candidates) + f":{directive}\n")
    return 0


# --- `kubectl kubeless completion bash|zsh|fish` -----------------------------------------------------------------

HEADER = """\
# {shell} completion for kubectl-kubeless (`kubectl kubeless completion {shell}`).
#
# `kubectl kubeless <TAB>` needs no script of its own: with kubectl's completion loaded
# ({kubectl_hint}), kubectl 1.26 and later ask the kubectl_complete-kubeless helper, shipped
# next to the plugin; it only has to be on PATH. This script completes the plugin run by its own name:
#   {load}
"""

SCRIPTS = {
    "bash": r"""
_kubectl_kubeless() {
    local cur=${COMP_WORDS[COMP_CWORD]} out directive line
    local -a candidates=()
    out=$(kubectl-kubeless __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null) || return 0
    directive=${out##*:}
    while IFS= read -r line; do
        [[ -z $line || $line == :* ]] && continue
        candidates+=("${line%%$'\t'*}")
    done <<< "$out"
    if (( ${#candidates[@]} )); then
        COMPREPLY=($(compgen -W "${candidates[*]}" -- "$cur"))
    elif (( (directive & 4) == 0 )); then
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
    if (( directive & 2 )); then compopt -o nospace 2>/dev/null; fi
    return 0
}
complete -F _kubectl_kubeless kubectl-kubeless
""",
    "zsh": r"""
_kubectl_kubeless() {
    local -a lines candidates
    local directive
    lines=("${(@f)$(kubectl-kubeless __complete "${(@)words[2,CURRENT-1]}" "${words[CURRENT]}" 2>/dev/null)}")
    directive=${lines[-1]#:}
    candidates=("${(@)lines[1,-2]}")
    candidates=("${(@)candidates//:/\\:}")
    candidates=("${(@)candidates/$'\t'/:}")
    if (( ${#candidates} )); then
        _describe 'kubectl-kubeless' candidates
    elif (( ! (directive & 4) )); then
        _files
    fi
}
compdef _kubectl_kubeless kubectl-kubeless
""",
    "fish": r"""
function __kubectl_kubeless_complete
    set -l words (commandline -opc)
    set -e words[1]
    kubectl-kubeless __complete $words (commandline -ct) 2>/dev/null | string match -v -r '^:[0-9]+$'
end
complete -c kubectl-kubeless -f -a '(__kubectl_kubeless_complete)'
""",
}
LOADING = {
    "bash": ("source <(kubectl completion bash)", "source <(kubectl kubeless completion bash)"),
    "zsh": ("source <(kubectl completion zsh)", "source <(kubectl kubeless completion zsh)"),
    "fish": ("kubectl completion fish | source", "kubectl kubeless completion fish | source"),
}


def script(shell: str) -> str:
    kubectl_hint, load = LOADING[shell]
    return HEADER.format(shell=shell, kubectl_hint=kubectl_hint, load=load) + SCRIPTS[shell].lstrip("\n")


def completion(args: argparse.Namespace, factory: Factory) -> int:
    factory.write(script(args.shell))
    return 0


EXAMPLES = """\
  # complete kubectl-kubeless in this bash session
  source <(kubectl kubeless completion bash)
  # for every zsh session
  kubectl kubeless completion zsh > "${fpath[1]}/_kubectl-kubeless"
  kubectl kubeless completion fish > ~/.config/fish/completions/kubectl-kubeless.fish

  # `kubectl kubeless <TAB>`: kubectl's own completion, and kubectl_complete-kubeless on PATH
  source <(kubectl completion bash)
"""


def register(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    parser = add_command(commands, "completion", parents=parents, usage="bash|zsh|fish",
                         summary="print a shell completion script",
                         description="Print a script that completes commands, flags, function and trigger names, "
                                     "and runtimes.",
                         examples=EXAMPLES, run=completion)
    parser.add_argument("shell", choices=sorted(SCRIPTS), metavar="bash|zsh|fish")
