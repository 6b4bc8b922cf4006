"""Help that teaches: every command's --help has examples that are real command lines, `kubectl kubeless` alone
prints the command tree, a mistyped command gets the closest ones, and none of it loads the API client."""
from __future__ import annotations

import argparse
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from kubectl_kubeless import cli, completion

REPO = Path(__file__).resolve().parents[2]


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, stdout=out, stderr=err, environ={})
    return code, out.getvalue(), err.getvalue()


def every_parser(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for name, _, _ in completion.command_names(parser):
        yield from every_parser(completion.subcommands(parser).choices[name], (*path, name))


PARSERS = list(every_parser(cli.build_parser()))


def aliases_of(path: tuple[str, ...]) -> list[list[str]]:
    parser, found = cli.build_parser(), []
    for name in path:
        found.append(next(aliases for n, aliases, _ in completion.command_names(parser) if n == name))
        parser = completion.subcommands(parser).choices[name]
    return found


def example_lines(help_text: str) -> list[str]:
    """The `kubectl kubeless ...` command lines of the examples section, continuation lines joined."""
    section = help_text.split("examples:\n", 1)[1]
    section = re.sub(r"\\\n\s*", "", section)
    lines = []
    for line in section.splitlines():
        if line.strip().startswith("#"):  # a comment says what the next line does
            continue
        for match in re.finditer(r"kubectl kubeless ([^)`|>]*)", line):
            lines.append(match.group(1).strip())
    return lines


@pytest.mark.parametrize("path,parser", PARSERS, ids=[" ".join(p) or "(root)" for p, _ in PARSERS])
def test_every_help_has_examples_that_parse(path, parser):
    text = parser.format_help()
    assert "examples:\n" in text, f"kubectl kubeless {' '.join(path)} --help has no examples"
    examples = example_lines(text)
    assert examples
    names = [set([name, *aliases]) for name, aliases in zip(path, aliases_of(path))]
    assert any(len(line.split()) >= len(path) and all(word in allowed for word, allowed in zip(line.split(), names))
               for line in examples), "no example of the command itself"
    for line in examples:
        if "COMMAND" in line or "VERB" in line:  # "Run `kubectl kubeless COMMAND --help` ..."
            continue
        try:
            cli.build_parser().parse_args(shlex.split(line))
        except SystemExit:
            pytest.fail(f"the example `kubectl kubeless {line}` does not parse")


@pytest.mark.parametrize("argv", [[], ["help"]])
def test_no_arguments_prints_the_command_tree(argv):
    code, out, err = run(argv)
    assert code == 0 and err == ""
    for line in ("install", "uninstall", "function deploy NAME", "function list (ls) [NAME...]", "function call NAME",
                 "function logs NAME", "get-server-config", "completion bash|zsh|fish", "version"):
        assert re.search(rf"^  {re.escape(line)}\s{{3,}}\S", out, re.M), line
    assert "-n/--namespace" in out


@pytest.mark.parametrize("argv,word,where,suggested", [
    (["fucntion", "ls"], "fucntion", "kubectl kubeless", ["function"]),
    (["instal"], "instal", "kubectl kubeless", ["install", "uninstall"]),
    (["-n", "x", "function", "delte", "hello"], "delte", "kubectl kubeless function", ["delete"]),
    (["function", "lst"], "lst", "kubectl kubeless function", ["list", "ls"]),
    (["verison"], "verison", "kubectl kubeless", ["version"]),
])
def test_an_unknown_command_suggests_the_closest(argv, word, where, suggested):
    code, out, err = run(argv)
    assert code == 2 and out == ""
    assert f'error: unknown command "{word}" for "{where}"' in err
    assert "Did you mean this?\n" + "".join(f"\t{name}\n" for name in suggested) in err
    assert f"Run '{where} --help' for usage." in err
    assert err.startswith(f"usage: {where}")


def test_an_unknown_command_without_a_close_one_lists_them():
    code, _, err = run(["frobnicate"])
    assert code == 2
    assert "Commands: install, uninstall, function, trigger, topic, get-server-config, completion, version" in err


@pytest.mark.parametrize("argv", [["--help"], ["version"], [], ["function", "deploy", "--help"],
                                  ["completion", "bash"], ["install", "--dry-run", "-o", "json"]])
def test_offline_commands_do_not_load_the_api_client(argv):
    """-X importtime lists every module the command imported: neither `kubernetes` nor urllib3 may be among them."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "kubectl_kubeless", *argv], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert not {name for name in imported if name.split(".")[0] in ("kubernetes", "urllib3", "requests")}
