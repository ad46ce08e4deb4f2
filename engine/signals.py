"""Ctrl-C and SIGTERM: finish the current step, save, and say how to resume.

The handlers only note the signal; the run stops at the next step boundary (every rank at
the same one under ``torchrun``), and ``CheckpointHook.on_stop`` saves.
"""

from __future__ import annotations

import signal

from engine.hooks import Hook
from engine.trainer import StopTraining

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalHook(Hook):
    def __init__(self) -> None:
        self.received: list = []
        self.previous: dict = {}

    def _note(self, signum, frame) -> None:  # noqa: ARG002
        self.received.append(signum)

    def before_train(self, trainer) -> None:
        self.previous = {s: signal.signal(s, self._note) for s in SIGNALS}

    def check(self, trainer) -> None:
        if trainer.dist.any(bool(self.received)):
            raise StopTraining(self.received[0] if self.received else signal.SIGTERM)

    after_step = check
    before_epoch = check  # after the epoch's end work (validation, schedule, save), not before it

    def close(self, trainer) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}
