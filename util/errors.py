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


def report_user_error(err: UserError, verbose: bool = False, where: str = "") -> int:
    """Print ``err`` as a one-line message on stderr and return the exit code (2); ``where``
    names the process of a multi-process run (``"rank 1: "``)."""
    if verbose:
        traceback.print_exception(type(err), err, err.__traceback__)
    print(f"{where}error: {one_line(err)}", file=sys.stderr, flush=True)
    return 2


def one_line(err: UserError) -> str:
    """The message of ``err``; for one raised in a DataLoader worker, without the worker's traceback."""
    text = str(err)
    if "\nOriginal Traceback" in text:  # torch re-raises it as UserError("Caught ...\n<traceback>\n<type>: msg")
        last = text.rstrip().splitlines()[-1]
        prefix = f"{type(err).__module__}.{type(err).__qualname__}: "
        text = last[len(prefix):] if last.startswith(prefix) else last
    return text


def user_error_from_os_error(err: OSError) -> UserError:
    """A failed file operation (disk full, not writable, ...) as a ``UserError`` naming the file."""
    where = f" {err.filename}" if err.filename else ""
    user_error = UserError(f"cannot access{where}: {err.strerror or err}")
    user_error.__cause__ = err  # --verbose shows where it happened
    return user_error
