"""What only the Python function runtime does, run as a real server subprocess.

The contract it shares with the other runtimes is tested in test_runtime_contract.py (its values: PYTHON there).
"""

from __future__ import annotations

from pathlib import Path

from runtime_harness import python_runtime


def test_module_named_as_the_runtime_is_refused(tmp_path: Path) -> None:
    """kubeless_runtime is the runtime's own module: importing it would not load the function."""
    expected = ("cannot load handler kubeless_runtime.handle: ValueError: the module name 'kubeless_runtime' is "
                "reserved for the runtime")
    refusal = python_runtime(tmp_path).refusal(MOD_NAME="kubeless_runtime")
    assert (refusal.exit_code, refusal.termination_log) == (1, expected + "\n")
    assert expected in refusal.stderr
