"""Ctrl-C, SIGTERM and the preemption signal: finish the current step, save, say how to resume.

The handlers only note the signal; the run stops at the next step boundary (every rank at
the same one under ``torchrun``: the note is a vote in the step's collective), and
``CheckpointHook.on_stop`` saves. ``--preempt_signal`` (SIGUSR1 by default: what SLURM's
``--signal=B:USR1@120`` sends some time before a job's end) is the warning a scheduler
gives before it preempts or stops a job. train.py then exits with ``128 + the signal's
number`` (``PREEMPTED_EXIT_CODE``, 138, for SIGUSR1; 130 for Ctrl-C, 143 for SIGTERM): a job
script requeues on it, and ``--continue_train auto`` resumes (README, "Preemption").
"""

from __future__ import annotations

import signal
from typing import Tuple

from engine.hooks import Hook
from engine.trainer import StopTraining
from util.signal_names import parse_preempt_signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)
PREEMPT_SIGNAL = "SIGUSR1"
PREEMPTED_EXIT_CODE = 128 + signal.SIGUSR1


def stop_signals(preempt_signal: str = PREEMPT_SIGNAL) -> Tuple[signal.Signals, ...]:
    """The signals that stop a run after a save: Ctrl-C, SIGTERM and ``--preempt_signal``
    (``none``: no third one)."""
    preempt = parse_preempt_signal(preempt_signal)
    return SIGNALS + (() if preempt is None or preempt in SIGNALS else (preempt,))


class SignalHook(Hook):
    def __init__(self, preempt_signal: str = PREEMPT_SIGNAL) -> None:
        self.signals = stop_signals(preempt_signal)
        self.received: list = []
        self.previous: dict = {}

    def _note(self, signum, frame) -> None:  # noqa: ARG002
        self.received.append(signum)

    def before_train(self, trainer) -> None:
        self.previous = {s: signal.signal(s, self._note) for s in self.signals}

    def votes(self, trainer, after_step: bool) -> dict:
        return {"signalled": float(bool(self.received)), "signum": float(self.received[0] if self.received else 0)}

    def check(self, trainer) -> None:
        count = trainer.agreed.get("signalled", 0)
        if count > 0:  # a rank that got none takes the others' signal (their mean: the same one, as a rule)
            signum = self.received[0] if self.received else round(trainer.agreed["signum"] / count)
            raise StopTraining(signum if signum in self.signals else signal.SIGTERM)

    after_step = check
    before_epoch = check  # after the epoch's end work (validation, schedule, save), not before it

    def close(self, trainer) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}
