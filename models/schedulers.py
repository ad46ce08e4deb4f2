"""Learning-rate schedules, looked up by ``--lr_policy`` in ``SCHEDULERS``.

Each builder takes the optimizer and the epoch options as plain arguments. Add an entry to
the table to offer a new policy. ``plateau`` needs the metric: ``scheduler.step(metric)``.

A resumed run follows the schedule of the options it is given now (``--n_epochs``,
``--n_epochs_decay``, ``--lr``, ``--lr_policy``, ``--lr_decay_iters``), as the reference
does: ``schedule_at`` replays that schedule up to the resumed epoch, so extending a finished
run (``--continue_train --n_epochs 2`` after one epoch) trains on at the rate a straight run
would use, not at the rate the first run decayed to.
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
    with warnings.catch_warnings():  # no optimizer.step() here: only the schedule is wanted
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(steps):
            scheduler.step()
    return optimizer.param_groups[0]["lr"], scheduler.state_dict()
