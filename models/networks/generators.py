"""Generators: the ResNet of Johnson et al. (CycleGAN) and the U-Net of pix2pix.

Module structure follows the reference implementation layer for layer, so its
``state_dict`` keys and shapes are identical and published weights load unchanged.

To add a generator, write an ``nn.Module`` and ``GENERATORS.add`` a ``GeneratorSpec``;
``define_G`` and the parametrized tests pick it up. ``--netG package.module.Class`` uses a
class outside the tree (see ``_outside_generator``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from util.registry import Registry

from .attention import use_attention
from .layers import NormLayer, conv_bias, get_norm_layer, init_weights, spectral_norm_convs

PADDINGS = Registry("padding type")
PADDINGS.add("reflect", nn.ReflectionPad2d)
PADDINGS.add("replicate", nn.ReplicationPad2d)
PADDINGS.add("zero", None)  # padding done by the conv itself


class ResnetBlock(nn.Module):
    """Two 3x3 convs with a residual connection (dropout between them if asked)."""

    def __init__(self, dim: int, padding_type: str, norm_layer: NormLayer,
                 use_dropout: bool, use_bias: bool) -> None:
        super().__init__()
        self.conv_block = self.build_conv_block(dim, padding_type, norm_layer, use_dropout,
                                                use_bias)

    def build_conv_block(self, dim: int, padding_type: str, norm_layer: NormLayer,
                         use_dropout: bool, use_bias: bool) -> nn.Sequential:
        pad_layer = PADDINGS.get(padding_type)

        def conv_unit() -> list[nn.Module]:
            pad = [pad_layer(1)] if pad_layer is not None else []
            conv_padding = 0 if pad_layer is not None else 1
            return pad + [nn.Conv2d(dim, dim, kernel_size=3, padding=conv_padding, bias=use_bias),
                          norm_layer(dim)]

        layers = conv_unit() + [nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += conv_unit()
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """7x7 conv, two stride-2 downsamplings, ``n_blocks`` ResNet blocks, two upsamplings."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64,
                 norm_layer: NormLayer = nn.BatchNorm2d, use_dropout: bool = False,
                 n_blocks: int = 6, padding_type: str = "reflect") -> None:
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        super().__init__()
        use_bias = conv_bias(norm_layer)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2 ** i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1,
                                 bias=use_bias),
                       norm_layer(ngf * mult * 2),
                       nn.ReLU(True)]
        mult = 2 ** n_downsampling
        layers += [ResnetBlock(ngf * mult, padding_type, norm_layer, use_dropout, use_bias)
                   for _ in range(n_blocks)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=3, stride=2,
                                          padding=1, output_padding=1, bias=use_bias),
                       norm_layer(ngf * mult // 2),
                       nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3),
                   nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0),
                   nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# Spatial dimensions -> (convolution, transposed convolution) of the U-Net.
CONVS = {2: (nn.Conv2d, nn.ConvTranspose2d), 3: (nn.Conv3d, nn.ConvTranspose3d)}


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: downsample, the ``submodule`` below, upsample, then concat the skip.

    The outermost level returns the output image instead of concatenating. ``dims`` 3
    makes it volumetric (3-D convolutions, for pix2pix3d).
    """

    takes_attention = True  # ``attention.use_attention`` gates its skip connection

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False,
                 innermost: bool = False, norm_layer: NormLayer = nn.BatchNorm2d,
                 use_dropout: bool = False, dims: int = 2) -> None:
        if submodule is None and not innermost:
            raise ValueError("a U-Net block needs a submodule unless it is innermost")
        super().__init__()
        self.outermost = outermost
        use_bias = conv_bias(norm_layer)
        if input_nc is None:
            input_nc = outer_nc
        conv, conv_transpose = CONVS[dims]
        downconv = conv(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        # Below the innermost level the skip concat doubles the channels coming up.
        up_in = inner_nc if innermost else inner_nc * 2

        if outermost:
            # The output conv keeps its bias: no norm follows it.
            upconv = conv_transpose(up_in, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = conv_transpose(up_in, outer_nc, kernel_size=4, stride=2, padding=1,
                                    bias=use_bias)
            layers = [downrelu, downconv, uprelu, upconv, norm_layer(outer_nc)]
        else:
            upconv = conv_transpose(up_in, outer_nc, kernel_size=4, stride=2, padding=1,
                                    bias=use_bias)
            layers = [downrelu, downconv, norm_layer(inner_nc), submodule,
                      uprelu, upconv, norm_layer(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net built from the innermost block outwards; ``num_downs`` halvings of the input.

    Level ``i`` (0 = outermost) has ``ngf * min(2**i, 8)`` filters. With ``num_downs >= 5``
    this is the reference's layout (unet_128, unet_256); fewer halvings (unet_16, unet_32
    ...) drop the innermost levels, for small patches. ``dims`` 3: the same net in 3-D.
    """

    def __init__(self, input_nc: int, output_nc: int, num_downs: int, ngf: int = 64,
                 norm_layer: NormLayer = nn.BatchNorm2d, use_dropout: bool = False, dims: int = 2) -> None:
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2, got {num_downs}")
        super().__init__()
        width = [ngf * min(2 ** i, 8) for i in range(num_downs)]
        block = UnetSkipConnectionBlock(width[-2], width[-1], innermost=True, norm_layer=norm_layer, dims=dims)
        for i in range(num_downs - 2, 0, -1):
            # The extra 8*ngf levels beyond the fifth are the only ones with dropout
            # (pix2pix's noise source).
            block = UnetSkipConnectionBlock(width[i - 1], width[i], submodule=block, norm_layer=norm_layer,
                                            use_dropout=use_dropout and i >= 4, dims=dims)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                             outermost=True, norm_layer=norm_layer, dims=dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


GeneratorBuilder = Callable[[int, int, int, NormLayer, bool], nn.Module]


@dataclass(frozen=True)
class GeneratorSpec:
    """How to build a generator and which input sides it accepts.

    ``builder(input_nc, output_nc, ngf, norm_layer, use_dropout)``; the input height and
    width must be multiples of ``size_multiple`` for the output to match the input size,
    and at least ``min_size`` (0: one ``size_multiple``).
    """

    builder: GeneratorBuilder
    size_multiple: int
    min_size: int = 0


def _resnet(n_blocks: int) -> GeneratorBuilder:
    def build(input_nc: int, output_nc: int, ngf: int, norm_layer: NormLayer,
              use_dropout: bool) -> nn.Module:
        return ResnetGenerator(input_nc, output_nc, ngf, norm_layer=norm_layer,
                               use_dropout=use_dropout, n_blocks=n_blocks)
    return build


def _unet(num_downs: int) -> GeneratorBuilder:
    def build(input_nc: int, output_nc: int, ngf: int, norm_layer: NormLayer,
              use_dropout: bool) -> nn.Module:
        return UnetGenerator(input_nc, output_nc, num_downs, ngf, norm_layer=norm_layer,
                             use_dropout=use_dropout)
    return build


# unet_N halves its input log2(N) times, down to 1x1: unet_256 and unet_128 are the
# reference's, the smaller ones suit small patches (multi-channel tiles, volumes).
UNET_SIDES = tuple(2 ** k for k in range(3, 11))  # 8 ... 1024


def _outside_generator(cls) -> GeneratorSpec:
    """``--netG package.module.Class``: built as ``Class(input_nc, output_nc, ngf,
    norm_layer=..., use_dropout=...)``; its ``size_multiple`` / ``min_size`` class attributes
    (default 4 and 0) say which image sizes it takes."""
    def build(input_nc: int, output_nc: int, ngf: int, norm_layer: NormLayer, use_dropout: bool) -> nn.Module:
        return cls(input_nc, output_nc, ngf, norm_layer=norm_layer, use_dropout=use_dropout)
    return GeneratorSpec(build, size_multiple=getattr(cls, "size_multiple", 4), min_size=getattr(cls, "min_size", 0))


GENERATORS = Registry("generator", dotted=True, adapt=_outside_generator)
# Two stride-2 convolutions must leave more than one pixel for the norm layers after them.
GENERATORS.add("resnet_9blocks", GeneratorSpec(_resnet(9), size_multiple=4, min_size=8))
GENERATORS.add("resnet_6blocks", GeneratorSpec(_resnet(6), size_multiple=4, min_size=8))
for side in UNET_SIDES:
    GENERATORS.add(f"unet_{side}", GeneratorSpec(_unet(side.bit_length() - 1), size_multiple=side))


# --upsample: the decoder's 2x upsampling. The resize modes are a resize followed by a 3x3
# convolution (Odena et al. 2016, "Deconvolution and checkerboard artifacts"): every output
# pixel gets the same number of kernel taps, so there is no checkerboard pattern.
UPSAMPLE_MODES = ("convtranspose", "nearest", "bilinear")


def resize_convolution(transposed: nn.ConvTranspose2d, mode: str) -> nn.Sequential:
    """A resize by 2 and a 3x3 convolution with the channels and bias of ``transposed``."""
    resize = nn.Upsample(scale_factor=2, mode=mode, **({} if mode == "nearest" else {"align_corners": False}))
    return nn.Sequential(resize, nn.Conv2d(transposed.in_channels, transposed.out_channels, kernel_size=3,
                                           padding=1, bias=transposed.bias is not None))


def use_resize_upsampling(net: nn.Module, mode: str) -> nn.Module:
    """Replace every stride-2 transposed convolution of ``net`` by ``resize_convolution`` (in
    place; any U-Net depth, the ResNet generator, and networks outside the tree alike)."""
    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.ConvTranspose2d) and child.stride == (2, 2):
                setattr(parent, name, resize_convolution(child, mode))
    return net


def generator_size_multiple(netG: str) -> int:
    """The input side of ``netG`` must be a multiple of this."""
    return GENERATORS.get(netG).size_multiple


def generator_min_size(netG: str) -> int:
    """The smallest input side ``netG`` accepts (a multiple of its size multiple)."""
    spec = GENERATORS.get(netG)
    return max(spec.min_size, spec.size_multiple)


def define_G(input_nc: int, output_nc: int, ngf: int, netG: str, norm: str = "batch",
             use_dropout: bool = False, init_type: str = "normal",
             init_gain: float = 0.02, spectral_norm: bool = False, upsample: str = "convtranspose",
             attention: str = "none") -> nn.Module:
    """Build and initialize generator ``netG`` on the CPU (moving it is the caller's job)."""
    spec = GENERATORS.get(netG)
    net = use_attention(spec.builder(input_nc, output_nc, ngf, get_norm_layer(norm), use_dropout), attention)
    if upsample != "convtranspose":
        net = use_resize_upsampling(net, upsample)
    net = init_weights(net, init_type, init_gain)
    return spectral_norm_convs(net) if spectral_norm else net


def generator_from_options(opt, input_nc: int, output_nc: int) -> nn.Module:
    """``define_G`` with a run's generator options (``--netG --ngf --normG --no_dropout --init_type
    --init_gain --spectral_norm_G --upsample --attention``): training and export build the same network."""
    return define_G(input_nc, output_nc, opt.ngf, opt.netG, opt.normG, not opt.no_dropout, opt.init_type,
                    opt.init_gain, spectral_norm=opt.spectral_norm_G, upsample=opt.upsample, attention=opt.attention)
