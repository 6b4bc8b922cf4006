"""`kubectl kubeless ...`: the command tree, kubectl's global flags, and the exit codes.

    kubectl kubeless function deploy|update|delete|list (ls)|describe|call|logs
    kubectl kubeless get-server-config
    kubectl kubeless version

kubectl finds the plugin as an executable named `kubectl-kubeless` on PATH (`make plugin` builds one into dist/);
`python -m kubectl_kubeless` runs the same code. Exit codes: 0 success; 1 bad input or a failed request, with one
`error: ...` line on stderr; 2 bad usage (unknown flag, missing argument). Nothing here imports the `kubernetes`
package: only commands that talk to the cluster do, so `--help` and `version` answer at once.
"""
from __future__ import annotations

import argparse
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from typing import TextIO

from kubectl_kubeless import api, function, serverconfig
from kubectl_kubeless.command import Factory, global_flags, global_options
from kubectl_kubeless.errors import UserError

NOUNS = [function, serverconfig]  # each module registers its commands: register(commands, parents)


def version(args: argparse.Namespace, factory: Factory) -> int:
    factory.write(f"kubectl-kubeless {api.project_version()}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl kubeless", usage="%(prog)s COMMAND [flags]", parents=[global_flags(top=True)],
        description="Kubeless functions-as-a-service on Kubernetes: deploy code, call it, read its logs.",
        epilog="Run `kubectl kubeless COMMAND --help` for the flags of a command.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, prog=parser.prog)
    parents = [global_flags(top=False)]
    for noun in NOUNS:
        noun.register(commands, parents)
    commands.add_parser("version", parents=parents, usage="%(prog)s", help="print the plugin's version").set_defaults(
        run=version)
    return parser


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None,
         client=None, environ: dict[str, str] | None = None) -> int:
    """Run one command line; returns the exit code. `client` replaces the API client (tests)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or bad usage (2)
        return exit_.code if isinstance(exit_.code, int) else 2
    factory = Factory(global_options(args), stdout, stderr, dict(os.environ if environ is None else environ),
                      injected_client=client)
    try:
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
