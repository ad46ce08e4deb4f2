"""The training loop, read top to bottom: epochs, batches, one model step per batch.

What happens around the steps (checkpoints, validation, the schedule, logging, the NaN
guard, signals, timing) lives in hooks (``engine/__init__.py`` lists them).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence

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
    fetch_s: float = 0.0  # seconds the last read of a batch took (read during the step's collective)


class StopTraining(Exception):
    """Raised by a hook to end the run early, after a save (``signum``: why)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


class Trainer:
    """Runs the epochs. Each step has one collective under ``torchrun`` (``agree``): after the
    model's step, one all-reduce of a small vector carries every rank's votes: the next batch's
    size (every rank takes a step or none does; the global batch), whether its loader ran out,
    and each hook's ``votes`` (the NaN guard's non-finite loss, a signal received). So the next
    batch is read before the hooks' ``after_step``; each epoch opens with one more all-reduce,
    for its first batch."""

    def __init__(self, opt, model, dataset, loader, hooks: Sequence[Hook], dist: Distributed) -> None:
        self.opt, self.model, self.dataset, self.loader, self.dist = opt, model, dataset, loader, dist
        self.sampler = loader.sampler
        self.hooks = list(hooks)
        self.state = TrainState(epoch=opt.epoch_count, last_epoch=opt.n_epochs + opt.n_epochs_decay)
        self.agreed: Dict[str, float] = {}  # the sums over ranks of the last collective's votes
        self._batches: Optional[Iterator[dict]] = None
        self._next: Optional[dict] = None

    def call(self, point: str, *args) -> None:
        for hook in self.hooks:
            getattr(hook, point)(self, *args)

    def train(self) -> int:
        """Run to the last epoch; returns the exit code (0, or 128 + signal when stopped)."""
        state = self.state
        try:
            self.call("before_train")
            while state.epoch <= state.last_epoch:
                self.open_epoch()
                self.call("before_epoch")
                while self.take_batch():
                    self.call("before_step")  # a hook may replace state.batch
                    self.model.train_step(state.batch)
                    self.agree(after_step=True)
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
            self._batches = self._next = None
            self.call("close")

    # ------------------------------------------------------------------ the epoch's batches
    def open_epoch(self) -> None:
        """The epoch's order from the resumed position on, and its first batch agreed on."""
        state = self.state
        self.sampler.set_epoch(state.epoch)
        self.sampler.set_start(state.epoch_iter)
        state.skipped = []
        self._batches = iter(self.loader)
        self.agree(after_step=False)

    def agree(self, after_step: bool) -> None:
        """Read the next batch, then the one all-reduce of this point: the sums over ranks of
        the batch's size, of 'my loader ran out', of 'my batch is empty' and of every hook's votes."""
        t0 = time.perf_counter()
        self._next = next(self._batches, None)
        self.state.fetch_s = time.perf_counter() - t0
        size = len(self._next["A"]) if self._next is not None and "A" in self._next else 0
        votes = {"size": size, "ended": float(self._next is None), "empty": float(size == 0)}
        for hook in self.hooks:
            votes.update(hook.votes(self, after_step))
        self.agreed = self.dist.sum_votes(votes)

    def take_batch(self) -> bool:
        """Make the agreed next batch ``state.batch``; False when the epoch is over. A batch
        that some rank could not read at all (every image unreadable) is skipped by every rank:
        a gradient sync must not wait forever. Counts the position in the epoch."""
        state = self.state
        while self.agreed["ended"] == 0:
            data = self._next
            skipped = data.get("skipped", [])
            state.skipped += skipped
            state.epoch_iter += len(skipped)
            if self.agreed["empty"] == 0:
                state.epoch_iter += len(data["A"])
                state.batch_size = int(self.agreed["size"])
                state.total_iters += state.batch_size
                state.batch = data
                return True
            self.agree(after_step=False)
        self._batches = self._next = None
        return False

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
