"""The training loop, read top to bottom: epochs, batches, one model step per batch.

What happens around the steps (checkpoints, validation, the schedule, logging, the NaN
guard, signals, timing) lives in hooks (``engine/__init__.py`` lists them).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Iterator, List, Sequence

from engine.distributed import Distributed
from engine.hooks import Hook
from util.errors import UserError


@dataclass
class TrainState:
    """Where the run is. ``epoch_iter`` counts this process's samples of the epoch's order
    (unreadable ones included, so a resumed run starts after the same samples);
    ``total_iters`` counts the images trained on by all processes."""

    epoch: int
    last_epoch: int
    epoch_iter: int = 0
    total_iters: int = 0
    batch: dict = field(default_factory=dict)
    batch_size: int = 0  # images of the current step, all processes together
    lr: float = 0.0
    skipped: List[str] = field(default_factory=list)  # unreadable files of this epoch
    skipped_total: int = 0
    skipped_files: set = field(default_factory=set)


class StopTraining(Exception):
    """Raised by a hook to end the run early, after a save (``signum``: why)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


class Trainer:
    def __init__(self, opt, model, dataset, loader, hooks: Sequence[Hook], dist: Distributed) -> None:
        self.opt, self.model, self.dataset, self.loader, self.dist = opt, model, dataset, loader, dist
        self.sampler = loader.sampler
        self.hooks = list(hooks)
        self.state = TrainState(epoch=opt.epoch_count, last_epoch=opt.n_epochs + opt.n_epochs_decay)

    def call(self, point: str, *args) -> None:
        for hook in self.hooks:
            getattr(hook, point)(self, *args)

    def train(self) -> int:
        """Run to the last epoch; returns the exit code (0, or 128 + signal when stopped)."""
        state = self.state
        try:
            self.call("before_train")
            while state.epoch <= state.last_epoch:
                self.call("before_epoch")
                for state.batch in self.batches():
                    self.call("before_step")  # a hook may replace state.batch
                    self.model.train_step(state.batch)
                    self.call("after_step")
                self.check_epoch()
                self.call("after_epoch")
                state.epoch += 1
                state.epoch_iter = 0
            self.call("after_train")
            return 0
        except StopTraining as stop:
            self.call("on_stop", stop.signum)
            return 128 + stop.signum
        finally:
            self.call("close")

    def batches(self) -> Iterator[dict]:
        """The epoch's readable batches, from the resumed position on; counts the position."""
        state = self.state
        self.sampler.set_epoch(state.epoch)
        self.sampler.set_start(state.epoch_iter)
        state.skipped = []
        for data in self.loader:
            skipped = data.get("skipped", [])
            state.skipped += skipped
            state.epoch_iter += len(skipped)
            size = len(data["A"]) if "A" in data else 0
            # Every process takes the step or none does: a gradient sync must not wait forever.
            if not self.dist.all_have(size > 0):
                continue
            state.epoch_iter += size
            state.batch_size = self.dist.sum_int(size)
            state.total_iters += state.batch_size
            yield data

    def check_epoch(self) -> None:
        state = self.state
        if state.skipped:
            state.skipped_total += len(state.skipped)
            state.skipped_files.update(state.skipped)
            print(f"epoch {state.epoch}: skipped {len(state.skipped)} unreadable image(s): "
                  f"{', '.join(state.skipped[:5])}" + (" ..." if len(state.skipped) > 5 else ""), file=sys.stderr)
        if state.epoch_iter == 0 and not state.skipped:
            raise UserError("the data loader produced no batches")
        if state.skipped and state.epoch_iter == len(state.skipped):
            raise UserError(f"every image of epoch {state.epoch} was unreadable ({len(state.skipped)} skipped, "
                            f"e.g. {state.skipped[0]}); nothing to train on")
