"""Signal names as a user writes them (``--preempt_signal USR1``): read by the options and the
training engine alike."""

from __future__ import annotations

import signal
from typing import Optional


def parse_signal(name: str) -> signal.Signals:
    """``USR1``, ``SIGUSR1`` or ``10`` as a signal; ValueError (KeyError for an unknown name)
    for another word."""
    text = name.strip().upper()
    if text.isdigit():
        return signal.Signals(int(text))
    return signal.Signals[text if text.startswith("SIG") else "SIG" + text]


def parse_preempt_signal(value: str) -> Optional[signal.Signals]:
    """``--preempt_signal``'s value as a signal, or None for ``none`` (no preemption signal)."""
    return None if value.strip().lower() == "none" else parse_signal(value)
