"""What ``BaseModel.update`` does around one optimizer step, as plain pieces.

- ``warmup_factor`` / ``scaled_lr``: ``--lr_warmup_iters``, a linear ramp of the rate over
  the first weight updates, applied only while the optimizer steps. The scheduler keeps
  owning ``group["lr"]``, so the warm-up multiplies whatever ``--lr_policy`` gives, and a
  resumed run (which rebuilds the schedule) needs only the count of updates done.
- ``clip_gradients``: ``--max_grad_norm``, after unscaling fp16 gradients.
- ``WeightAverage``: ``--ema_decay``, an exponential moving average of a network's weights,
  with StyleGAN2's ramp-up (``--ema_rampup``, ``ema_decay_at``).
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Dict, Iterator, List, Optional

import torch
from torch import nn


def warmup_factor(updates_done: int, warmup_iters: int) -> float:
    """The rate multiplier of update number ``updates_done + 1``: 1/N, 2/N, ..., then 1."""
    if warmup_iters <= 0:
        return 1.0
    return min(1.0, (updates_done + 1) / warmup_iters)


@contextlib.contextmanager
def scaled_lr(optimizer: torch.optim.Optimizer, factor: float) -> Iterator[None]:
    """The optimizer's rates times ``factor`` inside the block, restored after it."""
    if factor == 1.0:
        yield
        return
    saved = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * factor
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, saved):
            group["lr"] = lr


def optimizer_parameters(optimizer: torch.optim.Optimizer) -> List[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float,
                   scaler: Optional[torch.amp.GradScaler] = None) -> None:
    """Scale the optimizer's gradients to a total 2-norm of at most ``max_norm``.

    Under fp16 the gradients are unscaled first, so the norm is the true one; the scaler
    then does not unscale them again in its step.
    """
    if scaler is not None:
        scaler.unscale_(optimizer)
    params = [p for p in optimizer_parameters(optimizer) if p.grad is not None]
    if params:
        torch.nn.utils.clip_grad_norm_(params, max_norm)


def ema_decay_at(decay: float, rampup: float, updates_done: int) -> float:
    """The decay of the average's update after ``updates_done`` earlier updates.

    StyleGAN2-ADA (NVlabs/stylegan2-ada-pytorch training/training_loop.py, the G_ema update)
    sets ``ema_beta = 0.5 ** (batch_size / ema_nimg)`` with ``ema_nimg = min(ema_nimg,
    cur_nimg * ema_rampup)``: the average's half-life, in images, is at most ``ema_rampup``
    times the images seen so far. Counted in updates (the batch size cancels), the half-life
    of ``decay`` is ``h = ln 0.5 / ln decay`` updates; with the ramp-up it is ``min(h, rampup *
    updates_done)``. The first update (none done) copies the weights; from ``h / rampup``
    updates on the decay is ``decay`` itself. ``rampup`` 0: always ``decay``.
    """
    if rampup <= 0 or decay <= 0:
        return decay
    half_life = math.log(0.5) / math.log(decay)
    ramped = updates_done * rampup
    if ramped >= half_life:
        return decay
    return 0.5 ** (1.0 / max(ramped, 1e-8))


class WeightAverage:
    """Exponential moving averages of networks' weights: ``avg = beta * avg + (1 - beta) * w``,
    ``beta`` = ``ema_decay_at(decay, rampup, updates done)``.

    The averages are copies of the networks (buffers such as batch-norm statistics are
    copied from the trained network at each update), kept out of autograd and of the
    optimizers. ``networks()`` gives them under the names of the networks they follow.
    """

    def __init__(self, nets: Dict[str, nn.Module], decay: float, rampup: float = 0.0) -> None:
        self.decay = decay
        self.rampup = rampup
        self.averages = {name: copy.deepcopy(net).requires_grad_(False) for name, net in nets.items()}

    def networks(self) -> Dict[str, nn.Module]:
        return self.averages

    @torch.no_grad()
    def update(self, name: str, net: nn.Module, updates_done: int = 1 << 62) -> None:
        """Move ``name``'s average towards ``net`` (``updates_done``: the updates before this one)."""
        average = self.averages[name]
        beta = ema_decay_at(self.decay, self.rampup, updates_done)
        for avg, new in zip(average.parameters(), net.parameters()):
            avg.lerp_(new.detach().to(avg.dtype), 1.0 - beta)
        for avg, new in zip(average.buffers(), net.buffers()):
            avg.copy_(new)

    def state_dict(self) -> Dict[str, dict]:
        return {name: {k: v.detach().cpu() for k, v in net.state_dict().items()}
                for name, net in self.averages.items()}

    def load_state_dict(self, state: Dict[str, dict]) -> None:
        for name, net_state in state.items():
            if name in self.averages:
                self.averages[name].load_state_dict(net_state)
