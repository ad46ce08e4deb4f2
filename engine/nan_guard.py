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
    """Votes in the step's collective, so every rank stops at the same step."""

    def __init__(self) -> None:
        self.bad: list = []

    def votes(self, trainer, after_step: bool) -> dict:
        if not after_step:
            return {}
        self.bad = nonfinite_losses(trainer.model)
        return {"nonfinite": float(bool(self.bad))}

    def after_step(self, trainer) -> None:
        if trainer.agreed.get("nonfinite", 0) > 0:
            where = "on this process" if self.bad else "on another process"
            names = ", ".join("loss_" + n for n in self.bad) if self.bad else "a loss"
            raise UserError(f"{names} is not finite at iteration {trainer.state.total_iters} ({where}); stopped "
                            f"(the last saved checkpoint is intact). Try a lower --lr, another --gan_mode, "
                            f"or check the data")
