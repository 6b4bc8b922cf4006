"""What only the Python function runtime does, run as a real server subprocess.

The contract it shares with the other runtimes is tested in test_runtime_contract.py (its values: PYTHON there).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from kubeless_api import contract
from runtime_harness import BAD_LIMITS, MEMORY_QUANTITIES, PYTHON_RUNTIME, python_runtime


CONTRACT_DEFAULTS = (contract.DEFAULT_HEADER_TIMEOUT, contract.DEFAULT_READ_TIMEOUT, contract.DEFAULT_MAX_CONNECTIONS,
                     contract.DEFAULT_GRACE_PERIOD, contract.DEFAULT_BODY_LIMIT)


@pytest.fixture(scope="module")
def runtime_module() -> ModuleType:
    """The runtime's module, imported, for its pure functions."""
    spec = importlib.util.spec_from_file_location("kubeless_runtime_under_test", PYTHON_RUNTIME)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_module_named_as_the_runtime_is_refused(tmp_path: Path) -> None:
    """kubeless_runtime is the runtime's own module: importing it would not load the function."""
    expected = ("cannot load handler kubeless_runtime.handle: ValueError: the module name 'kubeless_runtime' is "
                "reserved for the runtime")
    refusal = python_runtime(tmp_path).refusal(MOD_NAME="kubeless_runtime")
    assert (refusal.exit_code, refusal.termination_log) == (1, expected + "\n")
    assert expected in refusal.stderr


def test_memory_limit_quantities(runtime_module: ModuleType) -> None:
    assert [(quantity, runtime_module.memory_limit_bytes(quantity)) for quantity, _ in MEMORY_QUANTITIES] == \
        MEMORY_QUANTITIES


@pytest.mark.parametrize("env, expected", BAD_LIMITS)
def test_bad_limits_are_refused(runtime_module: ModuleType, env: dict[str, str], expected: str) -> None:
    with pytest.raises(ValueError) as refusal:
        runtime_module.Config.from_env(env)
    assert str(refusal.value) == expected


def test_limit_defaults(runtime_module: ModuleType) -> None:
    config = runtime_module.Config.from_env({})
    assert (config.header_timeout, config.read_timeout, config.max_connections, config.grace_period,
            config.max_body_bytes) == CONTRACT_DEFAULTS
    assert [runtime_module.Config.from_env({"FUNC_GRACE_PERIOD": grace}).drain_seconds
            for grace in ("30", "10", "1", "0")] == [30 - contract.GRACE_MARGIN, 9, 0.9, 0]
    assert (runtime_module.RESERVE_CONNECTIONS, runtime_module.RESERVE_HEADER_TIMEOUT,
            runtime_module.BODY_LIMIT_MEMORY_SHARE) == (contract.RESERVE_CONNECTIONS,
                                                        contract.RESERVE_HEADER_TIMEOUT,
                                                        contract.BODY_LIMIT_MEMORY_SHARE)
