"""Seconds per step and seconds waiting between steps, for the loss lines and benchmarks."""

from __future__ import annotations

import time

from engine.hooks import Hook


class TimingHook(Hook):
    """``t_data``: from the end of the previous step to the batch being ready (data loading,
    and the hooks' work after the previous step); ``t_step``: the model's step. Place it
    first, so its ``after_step`` stops the clock before other hooks run."""

    def __init__(self) -> None:
        self.t_data = self.t_step = 0.0
        self._data_start = self._step_start = time.perf_counter()
        self._read = 0.0  # the batch's read, done by the trainer during the previous step's collective

    def before_epoch(self, trainer) -> None:
        self._data_start = time.perf_counter()
        self._read = trainer.state.fetch_s

    def before_step(self, trainer) -> None:
        self._step_start = time.perf_counter()
        self.t_data = self._step_start - self._data_start + self._read

    def after_step(self, trainer) -> None:
        self._data_start = time.perf_counter()
        self._read = trainer.state.fetch_s
        self.t_step = self._data_start - self._step_start - self._read
