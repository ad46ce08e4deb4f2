"""What ``BaseModel.update`` does around one optimizer step, as plain pieces.

- ``warmup_factor`` / ``scaled_lr``: ``--lr_warmup_iters``, a linear ramp of the rate over
  the first weight updates, applied only while the optimizer steps. The scheduler keeps
  owning ``group["lr"]``, so the warm-up multiplies whatever ``--lr_policy`` gives, and a
  resumed run (which rebuilds the schedule) needs only the count of updates done.
- ``clip_gradients``: ``--max_grad_norm``, after unscaling fp16 gradients.
- ``WeightAverage``: ``--ema_decay``, an exponential moving average of a network's weights,
  with StyleGAN2's ramp-up (``--ema_rampup``, ``ema_decay_at``).
- ``TrainingStep``, a part of ``BaseModel``: the step around a plugin's
  ``optimize_parameters`` (``train_step``: ``--amp``, ``--grad_accum_steps`` in both
  ``--grad_accum_mode``s, DDP's ``no_sync``) and ``update``, the one gradient step plugins
  call (fp16 scaling, clipping, warm-up, the EMA), with ``make_adam``, whose optimizers refuse
  a step from elsewhere. It reads what BaseModel sets up: ``opt``, ``device``, ``amp_dtype``,
  ``scalers``, ``base_lrs``, ``train_steps``, ``accum_steps``, ``exact_accumulation``,
  ``pending_batches``, ``weight_average``, ``loss_names`` and ``networks()``.
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Dict, Iterator, List, Optional

import torch
from torch import nn

from models.placement import distributed_wrapper, unwrap

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# Devices with a fused Adam kernel (CPU since torch 2.4); elsewhere --adam_impl fused uses foreach.
FUSED_ADAM_DEVICES = ("cpu", "cuda", "xpu", "mps")


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


class TrainingStep:
    """The training step and the gradient step of a model (see the module docstring)."""

    def autocast(self):
        """Mixed precision for forward passes when ``--amp`` asks for it. ``train_step`` and
        ``test`` enter it; a plugin does not."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(self, data: dict) -> None:
        """One training step on a batch: ``set_input``, then ``optimize_parameters`` under ``--amp``.

        With ``--grad_accum_steps K`` only every K-th step changes the weights; under
        ``torchrun`` the others run without DDP's gradient sync (forward and backward).
        """
        if self.exact_accumulation:
            self._exact_accumulation_step(data)
            return
        self.set_input(data)
        with self.autocast(), self._no_sync_unless_stepping():
            self.optimize_parameters()
        self.train_steps += 1

    def gan_step(self, with_discriminator: bool = True) -> None:
        """After the forward, the reference's step of a model with one ``netD``, in
        ``gan_phases``' names: D's loss and update, then G's against D frozen (G alone without a
        discriminator)."""
        if with_discriminator:
            self.set_requires_grad(self.netD, True)
            self.backward_D()
            self.update(self.optimizer_D, self.loss_D)
            self.set_requires_grad(self.netD, False)  # D's weights get no gradients in G's step
        self.backward_G()
        self.update(self.optimizer_G, self.loss_G)

    def gan_phases(self, forward) -> List:
        """The two phases of a model with one ``netD`` and one G step, in the reference's names
        (``backward_D``/``loss_D``/``optimizer_D``, ``backward_G``/``loss_G``/``optimizer_G``):
        D's (``forward`` without gradients, D's loss and update), then G's (``forward`` again, with
        gradients, against D frozen after its update)."""
        def discriminator_phase() -> None:
            with torch.no_grad():  # G's output is D's input only; G's phase recomputes it
                forward()
            self.set_requires_grad(self.netD, True)
            self.backward_D()
            self.update(self.optimizer_D, self.loss_D)

        def generator_phase() -> None:
            forward()
            self.set_requires_grad(getattr(self, "netD", None), False)
            self.backward_G()
            self.update(self.optimizer_G, self.loss_G)
        return [discriminator_phase, generator_phase]

    def _exact_accumulation_step(self, data: dict) -> None:
        """StudioGAN's order (POSTECH-CVLab/PyTorch-StudioGAN src/worker.py, train_discriminator /
        train_generator: D's loss over the accumulation's micro-batches, D's step, then G's
        forward and loss over them again, against the updated D, and G's step): the K batches
        are kept until the K-th, then each phase runs over all of them."""
        self.pending_batches.append(data)
        if len(self.pending_batches) < self.accum_steps:
            self.train_steps += 1
            # Nothing is computed until the K-th batch: the losses shown are the last update's
            # (0 before the first), the visuals those of its last batch.
            for name in self.loss_names:
                if not hasattr(self, "loss_" + name):
                    setattr(self, "loss_" + name, 0.0)
            return
        batches, self.pending_batches = self.pending_batches, []
        first = self.train_steps - (self.accum_steps - 1)
        for phase in self.accumulation_phases():
            for i, batch in enumerate(batches):
                self.train_steps = first + i  # update() zeroes at the first, steps at the last
                self.set_input(batch)
                with self.autocast(), self._no_sync_unless_stepping():
                    phase()
        self.train_steps = first + self.accum_steps

    def _accumulating(self) -> bool:
        """Whether this step only adds gradients (the update comes at a later step)."""
        return self.train_steps % self.accum_steps != self.accum_steps - 1

    def _no_sync_unless_stepping(self):
        stack = contextlib.ExitStack()
        if self._accumulating():
            for net in self.networks().values():
                ddp = distributed_wrapper(net)
                if ddp is not None:
                    stack.enter_context(ddp.no_sync())
        return stack

    def update(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """The gradient step of ``optimizer`` on ``loss``: zero the gradients, backward, step.

        Mixed precision lives here: the backward pass runs outside autocast, fp16 losses are
        scaled (one gradient scaler per optimizer) and the step is skipped when the scaled
        gradients overflowed. Plugins call this instead of ``loss.backward()`` and
        ``optimizer.step()``; an optimizer of ``make_adam`` refuses a step from elsewhere.
        """
        scaler = self.scalers.get(id(optimizer))
        if self.train_steps % self.accum_steps == 0:  # the first step of an accumulation
            optimizer.zero_grad(set_to_none=True)
        if self.accum_steps > 1:  # the sum of K mean losses / K: the mean over K batches
            loss = loss / self.accum_steps
        with torch.autocast(self.device.type, enabled=False):
            (scaler.scale(loss) if scaler is not None else loss).backward()
        if self._accumulating():
            return
        if self.opt.max_grad_norm > 0:
            clip_gradients(optimizer, self.opt.max_grad_norm, scaler)
        self._stepping = optimizer
        try:
            with scaled_lr(optimizer, warmup_factor(self.train_steps // self.accum_steps, self.opt.lr_warmup_iters)):
                if scaler is None:
                    optimizer.step()
                    stepped = True
                else:
                    scale = scaler.get_scale()
                    scaler.step(optimizer)
                    scaler.update()
                    # update() lowers the scale exactly when step() skipped on inf/NaN gradients.
                    stepped = scaler.get_scale() >= scale
        finally:
            self._stepping = None
        if stepped:  # the weights did not change on a skipped fp16 step: neither does their average
            self._update_weight_average(optimizer)

    def _update_weight_average(self, optimizer: torch.optim.Optimizer) -> None:
        """After ``optimizer`` stepped: move the averages of the networks it trains."""
        if self.weight_average is None:
            return
        stepped = {id(p) for p in optimizer_parameters(optimizer)}
        for name in self.weight_average.networks():
            net = unwrap(getattr(self, "net" + name))
            if id(next(net.parameters())) in stepped:
                self.weight_average.update(name, net, self.train_steps // self.accum_steps)

    def _check_step(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        # Under fp16 a step outside update() would apply scaled (or overflowed) gradients.
        if id(optimizer) in self.scalers and self._stepping is not optimizer:
            raise RuntimeError(f"{type(self).__name__}: an optimizer stepped outside BaseModel.update() under "
                               "--amp fp16; call self.update(optimizer, loss), which scales the gradients")

    def make_adam(self, params, lr: Optional[float] = None) -> torch.optim.Optimizer:
        """Adam with ``--beta1``/``--beta2`` at ``lr`` (default ``--lr``; the schedule scales it)."""
        # Fused Adam reads and writes each parameter, gradient and moment once per step; on a
        # CPU it is 4-5x faster than foreach, which matters for unet_256's 54 M weights.
        impl = self.opt.adam_impl
        if impl == "fused" and self.device.type not in FUSED_ADAM_DEVICES:
            impl = "foreach"
        kwargs = {"fused": {"fused": True}, "foreach": {"foreach": True}}.get(impl, {"foreach": False})
        lr = self.opt.lr if lr is None else lr
        optimizer = torch.optim.Adam(params, lr=lr, betas=(self.opt.beta1, self.opt.beta2), **kwargs)
        self.base_lrs[id(optimizer)] = lr
        optimizer.register_step_pre_hook(self._check_step)
        if self.amp_dtype is torch.float16:
            self.scalers[id(optimizer)] = torch.amp.GradScaler(self.device.type)
        return optimizer
