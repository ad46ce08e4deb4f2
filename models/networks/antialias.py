"""The ResNet generator and the PatchGAN of CUT (Park et al., ECCV 2020), with anti-aliased resampling.

Downsampling is a stride-1 conv followed by a fixed binomial blur taken with stride 2
(``Downsample``); upsampling is a fixed blurred transposed conv followed by a stride-1 conv
(``Upsample``), after Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019.
The layer sequence and the ``filt`` buffers (saved in the state dict) match the CUT
repository's ``ResnetGenerator``, so its published ``latest_net_G.pth`` files load; with
both flags off the layout is the CycleGAN generator's. ``AntialiasNLayerDiscriminator`` is
the CUT repository's ``NLayerDiscriminator`` (its ``latest_net_D.pth`` loads).

``forward(x, layers=[...], encode_only=True)`` returns the outputs of the listed layers of
``self.model`` (the encoder features of PatchNCE) and stops after the last one.
"""

from __future__ import annotations

from math import comb
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .generators import ResnetBlock
from .layers import NormLayer, conv_bias


def binomial_filter(size: int) -> torch.Tensor:
    """``size x size`` outer product of the binomial row (1, 2, 1 for 3), summing to 1."""
    row = torch.tensor([float(comb(size - 1, k)) for k in range(size)])
    kernel = row[:, None] * row[None, :]
    return kernel / kernel.sum()


class Downsample(nn.Module):
    """Blur with a 3x3 binomial filter, then keep every second pixel (per channel)."""

    def __init__(self, channels: int, filt_size: int = 3) -> None:
        super().__init__()
        pad = (filt_size - 1) // 2, (filt_size - 1) - (filt_size - 1) // 2
        self.pad = nn.ReflectionPad2d((pad[0], pad[1], pad[0], pad[1]))
        self.register_buffer("filt", binomial_filter(filt_size)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.filt.to(x.dtype), stride=2, groups=x.shape[1])


class Upsample(nn.Module):
    """Double the size with a fixed 4x4 binomial transposed conv (per channel)."""

    def __init__(self, channels: int, filt_size: int = 4) -> None:
        super().__init__()
        self.filt_size = filt_size
        self.pad = nn.ReplicationPad2d(1)
        # x4: each output pixel gets a quarter of the kernel's weight, stride 2.
        self.register_buffer("filt", (binomial_filter(filt_size) * 4)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv_transpose2d(self.pad(x), self.filt.to(x.dtype), stride=2,
                                 padding=1 + (self.filt_size - 1) // 2, groups=x.shape[1])[:, :, 1:, 1:]
        return out if self.filt_size % 2 == 1 else out[:, :, :-1, :-1]


class AntialiasResnetGenerator(nn.Module):
    """CUT's ResNet generator; ``antialias``/``antialias_up`` pick the resampling layers."""

    size_multiple = 4

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, norm_layer: NormLayer = nn.InstanceNorm2d,
                 use_dropout: bool = False, n_blocks: int = 9, antialias: bool = True,
                 antialias_up: bool = True, padding_type: str = "reflect") -> None:
        super().__init__()
        use_bias = conv_bias(norm_layer)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0, bias=use_bias),
                                   norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            c = ngf * 2 ** i
            if antialias:
                layers += [nn.Conv2d(c, 2 * c, 3, stride=1, padding=1, bias=use_bias), norm_layer(2 * c),
                           nn.ReLU(True), Downsample(2 * c)]
            else:
                layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=use_bias), norm_layer(2 * c),
                           nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, padding_type, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(2):
            c = ngf * 2 ** (2 - i)
            if antialias_up:
                layers += [Upsample(c), nn.Conv2d(c, c // 2, 3, stride=1, padding=1, bias=use_bias)]
            else:
                layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=use_bias)]
            layers += [norm_layer(c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, layers: Optional[Sequence[int]] = None, encode_only: bool = False):
        """The image; with ``layers`` also the listed layers' outputs (only those with ``encode_only``)."""
        if not layers:
            return self.model(x)
        wanted, last = set(layers), max(layers)
        feats = []
        for index, layer in enumerate(self.model):
            x = layer(x)
            if index in wanted:
                feats.append(x)
            if encode_only and index == last:
                return feats
        return x, feats


class AntialiasNLayerDiscriminator(nn.Module):
    """CUT's PatchGAN (taesungp/contrastive-unpaired-translation models/networks.py,
    ``NLayerDiscriminator`` with ``no_antialias`` False): each of the ``n_layers`` downsampling
    steps is a stride-1 4x4 conv, the norm (none on the first), LeakyReLU(0.2) and a blurred
    stride-2 ``Downsample``; then the stride-1 conv, norm, LeakyReLU and the 1-channel conv of
    the reference's PatchGAN. Layer indices, and so the state_dict keys (``model.2.filt``, ...),
    are the CUT code's.
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        use_bias = conv_bias(norm_layer)
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride=1, padding=1), nn.LeakyReLU(0.2, True),
                                   Downsample(ndf)]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, 4, stride=1, padding=1, bias=use_bias),
                       norm_layer(ndf * nf_mult), nn.LeakyReLU(0.2, True), Downsample(ndf * nf_mult)]
        nf_mult_prev, nf_mult = nf_mult, min(2 ** n_layers, 8)
        layers += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, 4, stride=1, padding=1, bias=use_bias),
                   norm_layer(ndf * nf_mult), nn.LeakyReLU(0.2, True),
                   nn.Conv2d(ndf * nf_mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
