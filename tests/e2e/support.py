"""Small helpers shared by the end-to-end tests."""
from __future__ import annotations

import subprocess
import time


def wait_until(what: str, condition, timeout: float = 60, interval: float = 0.5):
    """Poll condition() until it returns something truthy, and return that; fail with `what` otherwise."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except (AssertionError, subprocess.SubprocessError, KeyError, ValueError) as error:
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f": {last_error}" if last_error else ""))
