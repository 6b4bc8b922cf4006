"""Shell completion without a cluster: the engine with a fake lister, the `__complete` answer kubectl reads, the
bash script and the kubectl_complete-kubeless helper driven for real."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubectl_kubeless import cli, completion

REPO = Path(__file__).resolve().parents[2]


class FakeLister:
    """Function and trigger names per namespace, and what the kubeconfig and the catalogue would give."""

    def __init__(self):
        self.asked: list[dict] = []

    def object_names(self, kind, values):
        self.asked.append(dict(values))
        namespace = values.get("namespace") or "default"
        if kind != "Function":
            return {"HTTPTrigger": ["web"], "CronJobTrigger": ["nightly", "tick"], "KafkaTrigger": ["orders"],
                    "NATSTrigger": ["events"], "KinesisTrigger": ["clicks"]}[kind]
        return {"team": ["hello", "help-desk", "world"]}.get(namespace, ["echo"])

    def namespaces(self, values):
        return ["default", "kube-system", "team"]

    def runtimes(self, values):
        return ["go1.24", "nodejs22", "python3.11", "python3.12"]

    def contexts(self, values):
        return ["dev", "prod"]

    def clusters(self, values):
        return ["c1"]

    def users(self, values):
        return ["admin"]


def complete(*words: str, lister: FakeLister | None = None) -> tuple[list[str], int]:
    candidates, directive = completion.complete(cli.build_parser(), list(words), lister or FakeLister())
    return [c.split("\t")[0] for c in candidates], directive


def test_commands_at_each_level_with_their_summaries():
    names, directive = complete("")
    assert names == ["install", "uninstall", "function", "trigger", "topic", "get-server-config", "completion",
                     "version"]
    assert directive == completion.NO_FILE
    assert complete("fu") == (["function"], completion.NO_FILE)
    assert complete("function", "d")[0] == ["deploy", "delete", "describe"]
    assert complete("function", "l")[0] == ["list", "logs"]
    assert complete("function", "ls", "-")[0][0].startswith("-")
    raw, _ = completion.complete(cli.build_parser(), ["function", "de"], FakeLister())
    assert "deploy\tdeploy a function" in raw  # cobra's candidate<TAB>description


def test_the_hidden_command_is_never_offered():
    assert not any(name.startswith("__") for name in complete("")[0])


def test_function_names_for_every_verb_that_takes_one():
    for verb in ("update", "delete", "describe", "call", "logs", "ls", "list"):
        assert complete("function", verb, "")[0] == ["echo"], verb
    assert complete("function", "call", "", )[1] == completion.NO_FILE
    # deploy names a new function: nothing to offer
    assert complete("function", "deploy", "") == ([], completion.NO_FILE)


def test_function_names_come_from_the_namespace_typed_anywhere_on_the_line():
    assert complete("function", "call", "-n", "team", "he")[0] == ["hello", "help-desk"]
    assert complete("-n", "team", "function", "describe", "")[0] == ["hello", "help-desk", "world"]
    assert complete("function", "logs", "--namespace=team", "w")[0] == ["world"]
    assert complete("function", "logs", "-nteam", "w")[0] == ["world"]
    lister = FakeLister()
    complete("--kubeconfig", "/k", "--context", "prod", "function", "call", "", lister=lister)
    assert lister.asked[-1] == {"kubeconfig": "/k", "context": "prod"}


def test_one_name_per_argument():
    assert complete("function", "call", "hello", "") == ([], completion.NO_FILE)
    # ls takes several; the ones already given are not offered again
    assert complete("function", "ls", "-n", "team", "hello", "")[0] == ["help-desk", "world"]


def test_flags_are_offered_when_the_word_starts_with_a_dash():
    flags = complete("function", "deploy", "x", "--r")[0]
    assert sorted(flags) == ["--request-timeout", "--runtime", "--runtime-image"]
    assert "--kubeconfig" in complete("--")[0]
    assert "--help" in complete("function", "call", "-")[0]


def test_flag_values():
    assert complete("function", "deploy", "x", "--runtime", "py")[0] == ["python3.11", "python3.12"]
    assert complete("function", "deploy", "x", "-r", "")[0] == ["go1.24", "nodejs22", "python3.11", "python3.12"]
    assert complete("function", "deploy", "x", "--runtime=no")[0] == ["--runtime=nodejs22"]
    assert complete("function", "ls", "-o", "")[0] == ["wide", "json", "yaml", "name"]
    assert complete("function", "deploy", "x", "--image-pull-policy", "N")[0] == ["Never"]
    assert complete("-n", "k")[0] == ["kube-system"]
    assert complete("function", "ls", "--context", "")[0] == ["dev", "prod"]
    assert complete("completion", "")[0] == ["bash", "fish", "zsh"]
    # free values: nothing, and no file names either
    assert complete("function", "deploy", "x", "--memory", "") == ([], completion.NO_FILE)


def test_file_flags_let_the_shell_complete_file_names():
    for flag in ("--from-file", "-f", "--dependencies", "-d"):
        assert complete("function", "deploy", "x", flag, "") == ([], completion.DEFAULT)
    assert complete("--kubeconfig", "") == ([], completion.DEFAULT)


def test_a_mistyped_command_offers_nothing():
    assert complete("fnuction", "") == ([], completion.NO_FILE)


def test_the_complete_command_answers_like_cobra():
    out = io.StringIO()
    assert completion.run_complete(cli.build_parser(), ["function", "call", "-n", "team", "h"], out.write,
                                   lister=FakeLister()) == 0
    assert out.getvalue() == "hello\nhelp-desk\n:4\n"


def test_main_routes_complete_before_parsing():
    out, err = io.StringIO(), io.StringIO()
    # a partial line argparse would refuse; no kubeconfig, so no function names, and no error either
    assert cli.main(["__complete", "function", "call", ""], stdout=out, stderr=err, environ={}) == 0
    assert out.getvalue() == ":4\n" and err.getvalue() == ""


def test_the_walk_reads_lines_like_argparse():
    position = completion.walk(cli.build_parser(), ["-n", "x", "function", "ls", "a", "--", "-b"])
    assert position.path == ["function", "ls"]
    assert position.values == {"namespace": "x"}
    assert position.positionals == ["a", "-b"]
    assert completion.walk(cli.build_parser(), ["function", "frob", "x"]).unknown == "frob"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell):
    out = io.StringIO()
    assert cli.main(["completion", shell], stdout=out, environ={}) == 0
    script = out.getvalue()
    assert "kubectl-kubeless __complete" in script and "kubectl_complete-kubeless" in script


@pytest.fixture
def plugin_on_path(tmp_path: Path) -> dict[str, str]:
    """`kubectl-kubeless` on PATH, running this source tree."""
    folder = tmp_path / "bin"
    folder.mkdir()
    plugin = folder / "kubectl-kubeless"
    plugin.write_text(f"#!/bin/sh\nexec {sys.executable} -m kubectl_kubeless \"$@\"\n")
    plugin.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO),
            "KUBECONFIG": str(tmp_path / "none")}


def test_the_bash_script_completes(plugin_on_path):
    script = subprocess.run([sys.executable, "-m", "kubectl_kubeless", "completion", "bash"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout
    probe = script + '\nCOMP_WORDS=(kubectl-kubeless function de); COMP_CWORD=2; _kubectl_kubeless\n' \
                     'echo "${COMPREPLY[*]}"\n'
    result = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=plugin_on_path)
    assert result.stdout.split() == ["deploy", "delete", "describe"], result.stderr


def test_the_kubectl_helper_runs_the_plugin_next_to_it(plugin_on_path, tmp_path: Path):
    # as krew lays it out: both in one folder, the helper reached through a symbolic link
    store = tmp_path / "store"
    store.mkdir()
    (store / "kubectl-kubeless").write_text("#!/bin/sh\necho \"store: $*\"\n")
    (store / "kubectl-kubeless").chmod(0o755)
    helper = store / "kubectl_complete-kubeless"
    helper.write_bytes((REPO / "hack" / "kubectl_complete-kubeless").read_bytes())
    helper.chmod(0o755)
    link = tmp_path / "kubectl_complete-kubeless"
    link.symlink_to(helper)
    result = subprocess.run([str(link), "function", "call", ""], capture_output=True, text=True, check=True)
    assert result.stdout == "store: __complete function call \n"
    # alone, it runs the kubectl-kubeless on PATH
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "kubectl_complete-kubeless").write_bytes(helper.read_bytes())
    (alone / "kubectl_complete-kubeless").chmod(0o755)
    result = subprocess.run([str(alone / "kubectl_complete-kubeless"), "fu"], capture_output=True, text=True,
                            env=plugin_on_path, check=True)
    assert result.stdout.startswith("function\t") and result.stdout.endswith(":4\n")
