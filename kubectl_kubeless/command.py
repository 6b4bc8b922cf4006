"""What every command gets: a Factory (output streams, the namespace, the API client), kubectl's global flags, and
the shape of a command: its parser (`add_command`, `add_noun`) and the `--wait` flags of those that wait.

Named after kubectl's cmdutil.Factory. Commands never touch sys.stdout or the network directly: they ask the
factory, so a unit test hands in string streams and a fake client and reads what the command did.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

from kubectl_kubeless import flags
from kubectl_kubeless.errors import UserError
from kubectl_kubeless.kube import Client, GlobalOptions, Target, parse_request_timeout, resolve

WAIT_TIMEOUT = "120"  # how long --wait waits unless --wait-timeout says otherwise


@dataclass
class Factory:
    options: GlobalOptions
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    injected_client: object | None = None  # a test's fake Client
    stdin: TextIO | None = None  # None: sys.stdin (a question needs a terminal; tests hand in a string stream)
    _target: Target | None = None
    _client: object | None = None

    def target(self) -> Target:
        if self._target is None:
            self._target = resolve(self.options, self.environ)
        return self._target

    def namespace(self, *, offline: bool = False) -> str:
        """-n, else the kubeconfig context's namespace, else `default` (kubectl's rule). `offline` commands (a dry
        run) also accept a machine without any kubeconfig."""
        if self.options.namespace:
            return self.options.namespace
        if self.injected_client is not None:
            return "default"
        try:
            return self.target().namespace
        except UserError:
            if offline:
                return "default"
            raise

    def client(self) -> Client:
        if self._client is None:
            self._client = self.injected_client or Client(
                self.target(), parse_request_timeout(self.options.request_timeout), environ=self.environ)
        return self._client

    def ask(self, question: str) -> bool | None:
        """A yes/no question on stderr, answered on stdin; None when stdin is not a terminal (nobody to ask)."""
        stdin = self.stdin or sys.stdin
        if stdin is None or not stdin.isatty():
            return None
        print(question, end=" ", file=self.err, flush=True)
        return stdin.readline().strip().lower() in ("y", "yes")

    def info(self, message: str) -> None:
        print(message, file=self.err, flush=True)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=self.err, flush=True)

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def write_bytes(self, data: bytes) -> None:
        """Raw bytes (a function's answer) to stdout, undecoded when stdout is a real file."""
        buffer = getattr(self.out, "buffer", None)
        if buffer is not None:
            self.out.flush()
            buffer.write(data)
            buffer.flush()
        else:
            self.write(data.decode("utf-8", errors="replace"))


def global_flags(*, top: bool) -> argparse.ArgumentParser:
    """kubectl's global flags, accepted before or after the verb. Below the top level their default is SUPPRESS, so
    a subcommand does not overwrite a value given earlier on the line."""
    def default(value):
        return value if top else argparse.SUPPRESS

    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("kubectl global flags")
    group.add_argument("--kubeconfig", default=default(None), metavar="PATH",
                       help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    group.add_argument("--context", default=default(None), help="the kubeconfig context to use")
    group.add_argument("--cluster", default=default(None), help="the kubeconfig cluster to use")
    group.add_argument("--user", default=default(None), help="the kubeconfig user to use")
    group.add_argument("-n", "--namespace", default=default(None),
                       help="namespace (default: the context's namespace, else default)")
    group.add_argument("--request-timeout", default=default("0"), metavar="DURATION",
                       help="give up on a request after this long (e.g. 30s, 2m; 0 = no limit)")
    return parser


def global_options(args: argparse.Namespace) -> GlobalOptions:
    return GlobalOptions(kubeconfig=args.kubeconfig, context=args.context, cluster=args.cluster, user=args.user,
                         namespace=args.namespace, request_timeout=args.request_timeout)


def validate_global_options(options: GlobalOptions) -> None:
    """kubectl's Validate step for the global flags, before any command runs: raises UserError."""
    if options.namespace is not None:
        flags.namespace(options.namespace)
    parse_request_timeout(options.request_timeout)


# --- the shape of a command ------------------------------------------------------------------------------------

def add_command(commands: argparse._SubParsersAction, name: str, *, parents: list[argparse.ArgumentParser],
                usage: str, summary: str, description: str, examples: str, run=None, aliases: tuple[str, ...] = (),
                complete: str | None = None) -> argparse.ArgumentParser:
    """One command (or verb of a noun), shaped as every one is: `usage` after its name, `summary` in its parent's
    list, `description` atop its --help and `examples`, real command lines that a unit test parses, below it.
    `run(args, factory)` does the work; `complete` names what shell completion offers for its positional arguments
    (completion.py)."""
    parser = commands.add_parser(name, aliases=list(aliases), parents=parents, usage=f"%(prog)s {usage}".rstrip(),
                                 help=summary, description=description, epilog=f"examples:\n{examples}",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    if run is not None:
        parser.set_defaults(run=run)
    if complete is not None:
        parser.set_defaults(complete=complete)
    return parser


def add_noun(commands: argparse._SubParsersAction, name: str, *, parents: list[argparse.ArgumentParser],
             summary: str, description: str, examples: str) -> argparse._SubParsersAction:
    """A noun (`function`, and later `trigger`, `autoscale`, `topic`): a command whose verbs are added to what
    this returns, with `add_command`."""
    parser = add_command(commands, name, parents=parents, usage="VERB [flags]", summary=summary,
                         description=description, examples=examples)
    return parser.add_subparsers(dest="verb", metavar="VERB", required=True, prog=parser.prog)


def add_wait_flags(parser: argparse.ArgumentParser, until: str) -> None:
    """--wait (`wait until <until>`) and --wait-timeout; `wait_limit` reads them."""
    parser.add_argument("--wait", action="store_true", help=f"wait until {until}")
    parser.add_argument("--wait-timeout", default=WAIT_TIMEOUT, metavar="DURATION",
                        help=f"give up waiting after this long (default {WAIT_TIMEOUT} s)")


def wait_limit(args: argparse.Namespace) -> float | None:
    """The seconds --wait may take (--wait-timeout 0: the default), None without --wait. Read before any request,
    so a bad duration stops the command before it changes anything."""
    if not args.wait:
        return None
    return parse_request_timeout(args.wait_timeout, "--wait-timeout") or float(WAIT_TIMEOUT)
