"""`kubectl kubeless function VERB`: authoring and invoking functions, one module a group of verbs, as kubectl does.

    deploy    deploy, update    (spec: the Function object and the update patch, pure)
    delete    delete
    listing   list (ls), describe
    call      call
    logs      logs

What every noun shares (reading, patching and waiting on objects, pod states) is in objects.py; `-o` printing in
printers.py.
"""
from __future__ import annotations

import argparse

from kubectl_kubeless.function import call, delete, deploy, listing, logs
from kubectl_kubeless.command import add_noun

# in the order the help lists them
VERBS = [deploy, delete, listing, call, logs]

EXAMPLES = """\
  kubectl kubeless function deploy hello --runtime python3.11 --handler hello.handler --from-file hello.py --wait
  kubectl kubeless function ls
  kubectl kubeless function call hello --data 'world'
  kubectl kubeless function logs hello
  kubectl kubeless function delete hello

Run `kubectl kubeless function VERB --help` for the flags and examples of a verb.
"""


def register(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    verbs = add_noun(commands, "function", parents=parents, summary="function specific operations",
                     description="Deploy, update, list, describe, call and delete functions.", examples=EXAMPLES)
    for module in VERBS:
        module.register(verbs, parents)
