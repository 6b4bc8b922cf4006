"""`kubectl kubeless ...`: the command tree, kubectl's global flags, and the exit codes.

    kubectl kubeless install|uninstall
    kubectl kubeless function deploy|update|delete|list (ls)|describe|call|logs
    kubectl kubeless trigger http|cronjob|kafka|nats|kinesis create|update|delete|list (ls)
    kubectl kubeless trigger nats publish; trigger kinesis publish|create-stream
    kubectl kubeless topic create|delete|list (ls)|publish
    kubectl kubeless get-server-config
    kubectl kubeless completion bash|zsh|fish
    kubectl kubeless version

kubectl finds the plugin as an executable named `kubectl-kubeless` on PATH (`make plugin` builds one into dist/);
`python -m kubectl_kubeless` runs the same code. Without arguments it prints the command tree; a mistyped command
gets the closest ones. Exit codes: 0 success; 1 bad input or a failed request, with one `error: ...` line on stderr;
2 bad usage (unknown command or flag, missing argument). Nothing here imports the `kubernetes` package, and the
client code only for commands that talk to the cluster, so `--help` and `version` answer at once.
"""
from __future__ import annotations

import argparse
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from typing import TextIO

from kubeless_api import meta
from kubectl_kubeless import completion, function, install, serverconfig, topic, trigger
from kubectl_kubeless.command import Factory, add_command, global_flags, global_options, validate_global_options
from kubectl_kubeless.errors import UserError

# each module registers its commands, in the order the help lists them: register(commands, parents)
NOUNS = [install, function, trigger, topic, serverconfig, completion]
PROG = "kubectl kubeless"

ROOT_EXAMPLES = f"""examples:
  # once per cluster: the CRDs and the controller
  {PROG} install --wait

  # a function from a file, called once it is ready
  {PROG} function deploy hello --runtime python3.11 --handler hello.handler --from-file hello.py --wait
  {PROG} function call hello --data '{{"name": "world"}}'
  {PROG} function ls -n default

Run `{PROG} COMMAND --help` for the flags and examples of a command; `{PROG}` alone prints every command."""


def version(args: argparse.Namespace, factory: Factory) -> int:
    factory.write(f"kubectl-kubeless {meta.project_version()}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, usage="%(prog)s COMMAND [flags]", parents=[global_flags(top=True)],
        description="Kubeless functions-as-a-service on Kubernetes: deploy code, call it, read its logs.",
        epilog=ROOT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, prog=parser.prog)
    parents = [global_flags(top=False)]
    for noun in NOUNS:
        noun.register(commands, parents)
    add_command(commands, "version", parents=parents, usage="", summary="print the plugin's version",
                description="Print the plugin's version (also the version `install` installs).",
                examples=f"  {PROG} version\n", run=version)
    return parser


# --- the command tree and unknown commands ---------------------------------------------------------------------

def arguments_text(parser: argparse.ArgumentParser) -> str:
    """NAME, [NAME...], bash|zsh|fish: a command's positional arguments as its usage line shows them."""
    words = []
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        name = action.metavar or action.dest.upper()
        words.append({"*": f"[{name}...]", "+": f"{name}...", "?": f"[{name}]"}.get(action.nargs, name))
    return " ".join(words)


def tree_lines(parser: argparse.ArgumentParser, prefix: str = "") -> list[tuple[str, str]]:
    lines = []
    for name, aliases, summary in completion.command_names(parser):
        sub = completion.subcommands(parser).choices[name]
        shown = prefix + name + (f" ({', '.join(aliases)})" if aliases else "")
        if completion.subcommands(sub) is not None:
            lines.extend(tree_lines(sub, shown + " "))
        else:
            lines.append((f"{shown} {arguments_text(sub)}".rstrip(), summary))
    return lines


def command_tree(parser: argparse.ArgumentParser) -> str:
    lines = tree_lines(parser)
    width = max(len(command) for command, _ in lines) + 3
    flags = ", ".join("/".join(action.option_strings) for action in global_flags(top=True)._actions)
    return (f"{parser.description}\n\nUsage: {PROG} COMMAND [flags]\n\nCommands:\n"
            + "".join(f"  {command:<{width}}{summary}\n" for command, summary in lines)
            + f"\nGlobal flags, accepted by every command: {flags}\n"
            f"Run `{PROG} COMMAND --help` for the flags and examples of a command.\n")


def unknown_command(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """The error for a word where a command was expected, with the closest commands; None when there is none."""
    position = completion.walk(parser, argv)
    if position.unknown is None:
        return None
    level = parser
    for name in position.path:
        level = completion.subcommands(level).choices[name]
    where = " ".join([PROG, *position.path])
    names = [name for name, _, _ in completion.command_names(level)]
    aliases = [alias for _, found, _ in completion.command_names(level) for alias in found]
    close = completion.suggestions(position.unknown, names + aliases)
    text = f"unknown command \"{position.unknown}\" for \"{where}\"\n"
    if close:
        text += "\nDid you mean this?\n" + "".join(f"\t{name}\n" for name in close)
    else:
        text += f"\nCommands: {', '.join(names)}\n"
    return text + f"\nRun '{where} --help' for usage."


# --- main ------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None,
         client=None, environ: dict[str, str] | None = None, stdin: TextIO | None = None) -> int:
    """Run one command line; returns the exit code. `client` replaces the API client (tests)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if argv[:1] == ["__complete"]:  # hidden: the shell's (and kubectl's) question, see completion.py
        return completion.run_complete(parser, argv[1:], stdout.write, environ)
    if not argv or argv == ["help"]:
        stdout.write(command_tree(parser))
        return 0
    unknown = unknown_command(parser, argv)
    if unknown:
        try:
            with redirect_stderr(stderr):
                level = parser
                for name in completion.walk(parser, argv).path:
                    level = completion.subcommands(level).choices[name]
                level.error(unknown)  # usage line, `prog: error: ...`, exit 2
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else 2
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or bad usage (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    factory = Factory(global_options(args), stdout, stderr, dict(os.environ if environ is None else environ),
                      injected_client=client, stdin=stdin)
    try:
        validate_global_options(factory.options)
        return args.run(args, factory) or 0
    except UserError as error:
        print(f"error: {error}", file=stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `kubectl kubeless function ls | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the interpreter flushes it at exit
        except OSError:
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
