"""The one exception a command raises to stop with a message for the user.

`cli.main` prints it as a single `error: ...` line on stderr and exits 1, without a traceback: bad input, a refused
API request or an unreachable cluster are the user's to fix, not the program's.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input or a failed request: one line for the user, exit status 1."""
