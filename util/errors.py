"""Errors that are the user's to fix.

Raise ``UserError`` for anything a user can correct (a wrong path, an unknown name, an
invalid size). ``train.py`` and ``test.py`` print it as one line and exit with code 2;
with ``--verbose`` the traceback is shown too.
"""

from __future__ import annotations

import sys
import traceback


class UserError(Exception):
    """A mistake in the user's options or data, reported without a traceback."""


def report_user_error(err: UserError, verbose: bool = False) -> int:
    """Print ``err`` as a one-line message on stderr and return the exit code (2)."""
    if verbose:
        traceback.print_exception(type(err), err, err.__traceback__)
    print(f"error: {err}", file=sys.stderr)
    return 2
