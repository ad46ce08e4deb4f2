"""Discriminators: the PatchGAN of pix2pix (``basic`` = 70x70 receptive field) and a 1x1
PixelGAN.

Module structure follows the reference implementation layer for layer, so published
weights load unchanged. To add one, write an ``nn.Module`` and ``DISCRIMINATORS.add`` a
``DiscriminatorSpec``; ``--netD package.module.Class`` uses a class outside the tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn

from util.registry import Registry

from .generators import CONVS
from .layers import (
    SPECTRAL_NORM_PLACEMENTS,
    NormLayer,
    conv_bias,
    get_norm_layer,
    init_weights,
    spectral_norm_placement,
)


class NLayerDiscriminator(nn.Module):
    """PatchGAN: ``n_layers`` stride-2 4x4 convs, then two stride-1 ones down to 1 channel.

    Outputs one logit per overlapping patch (30x30 for a 256x256 input with n_layers=3).
    ``dims`` 3 makes it volumetric (3-D convolutions, for pix2pix3d). ``padding`` 1 is the
    reference's; pix2pixHD's discriminators pad ``ceil((4 - 1) / 2) = 2`` (NVIDIA/pix2pixHD
    models/networks.py, ``NLayerDiscriminator``: ``padw = int(np.ceil((kw-1.0)/2))``).
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3,
                 norm_layer: NormLayer = nn.BatchNorm2d, dims: int = 2, padding: int = 1) -> None:
        super().__init__()
        use_bias = conv_bias(norm_layer)
        conv = CONVS[dims][0]
        kw, padw = 4, padding
        # No norm on the first layer, as in DCGAN.
        layers: list[nn.Module] = [conv(input_nc, ndf, kernel_size=kw, stride=2, padding=padw),
                                   nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2 ** n, 8)
            layers += [conv(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=2,
                            padding=padw, bias=use_bias),
                       norm_layer(ndf * nf_mult),
                       nn.LeakyReLU(0.2, True)]
        # A stride-1 layer enlarges the receptive field (to 70x70 for n_layers=3).
        nf_mult_prev, nf_mult = nf_mult, min(2 ** n_layers, 8)
        layers += [conv(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=1,
                        padding=padw, bias=use_bias),
                   norm_layer(ndf * nf_mult),
                   nn.LeakyReLU(0.2, True)]
        layers.append(conv(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: classifies each pixel independently (colour statistics only)."""

    def __init__(self, input_nc: int, ndf: int = 64,
                 norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        use_bias = conv_bias(norm_layer)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, kernel_size=1, stride=1, padding=0),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, stride=1, padding=0, bias=use_bias),
            norm_layer(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, kernel_size=1, stride=1, padding=0, bias=use_bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD's discriminators (Wang et al. 2018): ``nets[k]`` judges the input downsampled
    ``k`` times by 2 (3x3 average pooling). ``forward`` returns, per scale, the outputs of
    every activation of the network and its prediction last: the features of ``--lambda_feat``.
    """

    def __init__(self, nets: list[nn.Module]) -> None:
        super().__init__()
        self.scales = nn.ModuleList(nets)
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outputs = []
        for k, net in enumerate(self.scales):
            if k > 0:
                x = self.downsample(x)
            outputs.append(layer_outputs(net, x))
        return outputs


def layer_outputs(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every LeakyReLU of ``net``'s layer sequence, then its final output."""
    sequence = next(m for m in net.children() if isinstance(m, nn.Sequential))
    outputs = []
    for layer in sequence:
        x = layer(x)
        if isinstance(layer, nn.LeakyReLU):
            outputs.append(x)
    return outputs + [x]


DiscriminatorBuilder = Callable[[int, int, int, NormLayer], nn.Module]
PIX2PIXHD_PADDING = 2  # ceil((kw - 1) / 2) for pix2pixHD's 4x4 kernels


@dataclass(frozen=True)
class DiscriminatorSpec:
    """``builder(input_nc, ndf, n_layers_D, norm_layer)``; builders may ignore ``n_layers_D``.

    ``min_size(n_layers_D)`` is the smallest input side the network accepts.
    """

    builder: DiscriminatorBuilder
    min_size: Callable[[int], int] = lambda n_layers_D: 1
    # How each scale of pix2pixHD's multiscale discriminator is built (None: ``builder``).
    multiscale_builder: Optional[DiscriminatorBuilder] = None


def _basic(input_nc: int, ndf: int, n_layers_D: int, norm_layer: NormLayer) -> nn.Module:
    return NLayerDiscriminator(input_nc, ndf, n_layers=3, norm_layer=norm_layer)


def _n_layers(input_nc: int, ndf: int, n_layers_D: int, norm_layer: NormLayer) -> nn.Module:
    return NLayerDiscriminator(input_nc, ndf, n_layers=n_layers_D, norm_layer=norm_layer)


def _basic_hd(input_nc: int, ndf: int, n_layers_D: int, norm_layer: NormLayer) -> nn.Module:
    return NLayerDiscriminator(input_nc, ndf, n_layers=3, norm_layer=norm_layer, padding=PIX2PIXHD_PADDING)


def _n_layers_hd(input_nc: int, ndf: int, n_layers_D: int, norm_layer: NormLayer) -> nn.Module:
    return NLayerDiscriminator(input_nc, ndf, n_layers=n_layers_D, norm_layer=norm_layer, padding=PIX2PIXHD_PADDING)


def _pixel(input_nc: int, ndf: int, n_layers_D: int, norm_layer: NormLayer) -> nn.Module:
    return PixelDiscriminator(input_nc, ndf, norm_layer=norm_layer)


def _patch_min_size(n_layers: int) -> int:
    # n stride-2 convs divide the side by 2**n; the two stride-1 4x4 convs then take 1 pixel
    # each, and the norm layer between them needs more than one pixel: side / 2**n >= 3.
    return 3 * 2 ** n_layers


def _outside_discriminator(cls) -> DiscriminatorSpec:
    """``--netD package.module.Class``: built as ``Class(input_nc, ndf, n_layers=n_layers_D,
    norm_layer=...)``; a ``min_size`` class attribute (default 1) is the smallest side it takes."""
    def build(input_nc: int, ndf: int, n_layers_D: int, norm_layer: NormLayer) -> nn.Module:
        return cls(input_nc, ndf, n_layers=n_layers_D, norm_layer=norm_layer)
    smallest = getattr(cls, "min_size", 1)
    return DiscriminatorSpec(build, min_size=lambda n_layers_D: smallest)


DISCRIMINATORS = Registry("discriminator", dotted=True, adapt=_outside_discriminator)
DISCRIMINATORS.add("basic", DiscriminatorSpec(_basic, min_size=lambda n_layers_D: _patch_min_size(3),
                                              multiscale_builder=_basic_hd))
DISCRIMINATORS.add("n_layers", DiscriminatorSpec(_n_layers, min_size=_patch_min_size, multiscale_builder=_n_layers_hd))
DISCRIMINATORS.add("pixel", DiscriminatorSpec(_pixel, min_size=lambda n_layers_D: 2))  # its norm needs 2+ pixels


def discriminator_min_size(netD: str, n_layers_D: int = 3) -> int:
    """The smallest input side ``netD`` accepts."""
    return DISCRIMINATORS.get(netD).min_size(n_layers_D)


def define_D(input_nc: int, ndf: int, netD: str, n_layers_D: int = 3, norm: str = "batch",
             init_type: str = "normal", init_gain: float = 0.02, spectral_norm="none",
             num_D: int = 0) -> nn.Module:
    """Build and initialize discriminator ``netD`` on the CPU (moving it is the caller's job).

    ``num_D`` > 0: a ``MultiscaleDiscriminator`` of that many (its outputs are lists), each
    built as pix2pixHD builds its scales (the PatchGANs pad 2). ``spectral_norm``: a
    ``SPECTRAL_NORM_PLACEMENTS`` name (``none``, ``sngan``, ``spade``; a bool is ``sngan``/``none``).
    """
    spec = DISCRIMINATORS.get(netD)
    place = SPECTRAL_NORM_PLACEMENTS.get(spectral_norm_placement(spectral_norm))
    if num_D > 0:
        build = spec.multiscale_builder or spec.builder
        return MultiscaleDiscriminator([
            place(init_weights(build(input_nc, ndf, n_layers_D, get_norm_layer(norm)), init_type, init_gain))
            for _ in range(num_D)])
    return place(init_weights(spec.builder(input_nc, ndf, n_layers_D, get_norm_layer(norm)), init_type, init_gain))
