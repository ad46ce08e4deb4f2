"""Learning-rate schedules, looked up by ``--lr_policy`` in ``SCHEDULERS``.

Each builder takes the optimizer and the epoch options as plain arguments. Add an entry to
the table to offer a new policy. ``plateau`` needs the metric: ``scheduler.step(metric)``.

A resumed run follows the schedule of the options it is given now (``--n_epochs``,
``--n_epochs_decay``, ``--lr``, ``--lr_policy``, ``--lr_decay_iters``), as the reference
does: the schedule is replayed up to the resumed epoch, so extending a finished run
(``--continue_train --n_epochs 2`` after one epoch) trains on at the rate a straight run
would use, not at the rate the first run decayed to.

``Schedule`` is a part of ``BaseModel``: it builds each optimizer's scheduler once, in
``setup`` for a new run or in ``follow_schedule`` after a resume has loaded the optimizers,
and steps them at the end of every epoch. It reads ``opt``, ``optimizers``, ``base_lrs``,
``metric`` and the saved states ``load_training_state`` leaves in ``saved_schedulers``.
"""

from __future__ import annotations

import warnings
from typing import Tuple

import torch
from torch.optim import Optimizer, lr_scheduler

from util.registry import Registry


def _linear(optimizer: Optimizer, n_epochs: int, n_epochs_decay: int, epoch_count: int,
            lr_decay_iters: int) -> lr_scheduler.LRScheduler:
    """Constant lr for ``n_epochs``, then linear decay over ``n_epochs_decay`` (pix2pix/CycleGAN).

    ``epoch_count`` shifts the schedule when training resumes at a later epoch.
    """
    def lambda_rule(epoch: int) -> float:
        return 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1)
    return lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda_rule)


def _step(optimizer: Optimizer, n_epochs: int, n_epochs_decay: int, epoch_count: int,
          lr_decay_iters: int) -> lr_scheduler.LRScheduler:
    return lr_scheduler.StepLR(optimizer, step_size=lr_decay_iters, gamma=0.1)


def _plateau(optimizer: Optimizer, n_epochs: int, n_epochs_decay: int, epoch_count: int,
             lr_decay_iters: int) -> lr_scheduler.ReduceLROnPlateau:
    return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01,
                                          patience=5)


def _cosine(optimizer: Optimizer, n_epochs: int, n_epochs_decay: int, epoch_count: int,
            lr_decay_iters: int) -> lr_scheduler.LRScheduler:
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_epochs, eta_min=0)


SCHEDULERS = Registry("lr policy")
SCHEDULERS.add("linear", _linear)
SCHEDULERS.add("step", _step)
SCHEDULERS.add("plateau", _plateau)
SCHEDULERS.add("cosine", _cosine)


def get_scheduler(optimizer: Optimizer, policy: str, n_epochs: int, n_epochs_decay: int,
                  epoch_count: int = 1, lr_decay_iters: int = 50):
    """Return the learning-rate scheduler for ``policy``, stepped once per epoch."""
    return SCHEDULERS.get(policy)(optimizer, n_epochs, n_epochs_decay, epoch_count, lr_decay_iters)


def schedule_at(policy: str, lr: float, n_epochs: int, n_epochs_decay: int, epoch_count: int,
                lr_decay_iters: int, steps: int) -> Tuple[float, dict]:
    """(learning rate, scheduler state) of ``policy`` after ``steps`` epoch steps from ``lr``.

    The schedule is replayed on a one-weight optimizer, so the rate is computed by the same
    float operations as in a run that was never interrupted. Not for ``plateau``, whose state
    depends on the metrics seen.
    """
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = get_scheduler(optimizer, policy, n_epochs, n_epochs_decay, epoch_count, lr_decay_iters)
    replay(scheduler, steps)
    return optimizer.param_groups[0]["lr"], scheduler.state_dict()


def replay(scheduler: lr_scheduler.LRScheduler, steps: int) -> None:
    """Step ``scheduler`` ``steps`` times, as the epochs of a run would have."""
    with warnings.catch_warnings():  # no optimizer.step() here: only the schedule is wanted
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(steps):
            scheduler.step()


class Schedule:
    """The learning-rate schedulers of a model's optimizers (see the module docstring)."""

    def make_scheduler(self, optimizer: Optimizer):
        opt = self.opt
        return get_scheduler(optimizer, opt.lr_policy, opt.n_epochs, opt.n_epochs_decay, opt.epoch_count,
                             opt.lr_decay_iters)

    def start_schedule(self) -> None:
        """A new run's schedulers, at the optimizers' own rates."""
        self.schedulers = [self.make_scheduler(o) for o in self.optimizers]

    def follow_schedule(self, epoch: int) -> float:
        """After ``load_training_state`` (or a weights-only resume): build the schedulers, once,
        at the rates that this run's schedule options give at ``epoch`` (the epoch about to
        run); returns the rate.

        The saved schedulers followed the options of the run that wrote the checkpoint; a
        resumed run may extend or change them, so each scheduler is built on its optimizer
        from the base rate (``--lr``, or ``--lr_D`` for a discriminator) and stepped once per
        epoch done: the same float operations as a run never interrupted. ``plateau``
        depends on the metrics seen, so it takes its saved state, its rate scaled by a
        changed ``--lr``.
        """
        opt = self.opt
        saved = self.saved_schedulers or []
        self.schedulers = []
        for i, optimizer in enumerate(self.optimizers):
            base = self.base_lrs.get(id(optimizer), opt.lr)
            for group in optimizer.param_groups:
                if opt.lr_policy == "plateau":
                    group["lr"] *= base / group.get("initial_lr", base)
                else:
                    group["lr"] = base
                group["initial_lr"] = base
            scheduler = self.make_scheduler(optimizer)
            if opt.lr_policy == "plateau":
                if i < len(saved):
                    scheduler.load_state_dict(saved[i])
            else:
                replay(scheduler, epoch - opt.epoch_count)
            self.schedulers.append(scheduler)
        self.saved_schedulers = None
        return self.optimizers[0].param_groups[0]["lr"] if self.optimizers else 0.0

    def update_learning_rate(self) -> float:
        """Step every scheduler once (called at the end of each epoch); return the new lr."""
        for scheduler in self.schedulers:
            if self.opt.lr_policy != "plateau":
                scheduler.step()
            elif self.metric is not None:  # plateau steps on epochs with a validation figure
                scheduler.step(self.metric)
        self.metric = None
        return self.optimizers[0].param_groups[0]["lr"] if self.optimizers else 0.0
