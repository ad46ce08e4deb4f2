"""Attention for the U-Net generator (``--attention``), added to a built network in place.

- ``up``: an additive attention gate on each skip connection, in the decoder, after Oktay et
  al. 2018 ("Attention U-Net", Eq. 1-2): the skip features ``x`` are weighted per pixel by
  ``sigmoid(psi(relu(W_x x + W_g g)))`` before the two are concatenated. This is a
  same-resolution variant, not the paper's gate: ``g`` is the decoder's feature map already
  upsampled to the skip's resolution, so ``W_x`` is a 1x1 conv at stride 1 and the map
  needs no resampling. The paper (ozan-oktay/Attention-Gated-Networks,
  models/layers/grid_attention_layer.py) gates with the coarser level: a strided ``W_x``
  down to ``g``'s grid, the map resampled up, and a 1x1 conv + batch norm on the gated output.
- ``down``: spatial attention after each encoder block (the CBAM spatial map, Woo et al.
  2018): the block's output is weighted by ``sigmoid(conv7x7([mean_c, max_c]))`` before it
  goes both down the U-Net and into the skip.
- ``both``: the two.

Works on every U-Net level below the outermost one (a module that declares
``takes_attention``, as ``generators.UnetSkipConnectionBlock`` does), so on any U-Net depth;
this module knows the blocks by that attribute, not by importing them, so the generators
can import it without a loop.
The state_dict gains ``gate.*`` / ``spatial.*`` keys only when attention is on.
"""

from __future__ import annotations

import torch
from torch import nn

from util.errors import UserError

ATTENTION_MODES = ("none", "up", "down", "both")


class AttentionGate(nn.Module):
    """Weights the skip features ``x`` by a map computed from them and the gating signal ``g``."""

    def __init__(self, channels: int, gating_channels: int) -> None:
        super().__init__()
        inner = max(1, channels // 2)
        self.W_x = nn.Conv2d(channels, inner, kernel_size=1, bias=False)
        self.W_g = nn.Conv2d(gating_channels, inner, kernel_size=1)
        self.psi = nn.Conv2d(inner, 1, kernel_size=1)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.psi(torch.relu(self.W_x(x) + self.W_g(g))))


class SpatialAttention(nn.Module):
    """Weights every pixel of ``x`` by a map of its channel mean and maximum."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size=kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], 1)
        return x * torch.sigmoid(self.conv(pooled))


def _attended_forward(self, x: torch.Tensor) -> torch.Tensor:
    if getattr(self, "spatial", None) is not None:
        x = self.spatial(x)  # the encoder's output, attended, goes down and into the skip
    y = self.model(x)
    skip = self.gate(x, y) if getattr(self, "gate", None) is not None else x
    return torch.cat([skip, y], 1)


def use_attention(net: nn.Module, mode: str) -> nn.Module:
    """Add ``mode``'s attention to every inner U-Net block of ``net`` (in place); returns ``net``."""
    if mode == "none":
        return net
    blocks = [m for m in net.modules() if getattr(m, "takes_attention", False) and not m.outermost]
    if not blocks:
        raise UserError(f"--attention {mode} is for the U-Net generators (--netG unet_*)")
    for block in blocks:
        channels = next(m for m in block.model if isinstance(m, nn.Conv2d)).in_channels  # the skip's
        if mode in ("up", "both"):
            block.gate = AttentionGate(channels, channels)
        if mode in ("down", "both"):
            block.spatial = SpatialAttention()
        block.__class__ = _attended_class(type(block))
    return net


_ATTENDED: dict = {}


def _attended_class(cls: type) -> type:
    """``cls`` with the attended forward (one subclass per block class)."""
    if cls not in _ATTENDED:
        _ATTENDED[cls] = type("Attention" + cls.__name__, (cls,), {"forward": _attended_forward})
    return _ATTENDED[cls]
