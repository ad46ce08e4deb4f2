"""Stop on a non-finite loss, naming it, before anything is saved."""

from __future__ import annotations

import math

import torch

from engine.hooks import Hook
from util.errors import UserError


def nonfinite_losses(model) -> list:
    """Names of the model's losses that are NaN or infinite (one device sync when all are fine)."""
    losses = {n: getattr(model, "loss_" + n) for n in model.loss_names}
    tensors = [v.detach().float().reshape(()) for v in losses.values() if isinstance(v, torch.Tensor)]
    if tensors and bool(torch.stack(tensors).isfinite().all()) and all(
            math.isfinite(v) for v in losses.values() if not isinstance(v, torch.Tensor)):
        return []
    return [n for n, v in losses.items() if not math.isfinite(float(v.detach() if isinstance(v, torch.Tensor) else v))]


class NanGuardHook(Hook):
    def after_step(self, trainer) -> None:
        bad = nonfinite_losses(trainer.model)
        if trainer.dist.any(bool(bad)):  # every rank stops at the same step
            where = "on this process" if bad else "on another process"
            names = ", ".join("loss_" + n for n in bad) if bad else "a loss"
            raise UserError(f"{names} is not finite at iteration {trainer.state.total_iters} ({where}); stopped "
                            f"(the last saved checkpoint is intact). Try a lower --lr, another --gan_mode, "
                            f"or check the data")
