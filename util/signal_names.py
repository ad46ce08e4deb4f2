"""Signal names as a user writes them (``--preempt_signal USR1``): read by the options and the
training engine alike."""

from __future__ import annotations

import signal


def parse_signal(name: str) -> signal.Signals:
    """``USR1``, ``SIGUSR1`` or ``10`` as a signal; ValueError (KeyError for an unknown name)
    for another word."""
    text = name.strip().upper()
    if text.isdigit():
        return signal.Signals(int(text))
    return signal.Signals[text if text.startswith("SIG") else "SIG" + text]
