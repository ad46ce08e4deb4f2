"""Networks that take a latent code besides the image: BicycleGAN's generator and encoder.

Zhu et al., "Toward Multimodal Image-to-Image Translation", NeurIPS 2017, Sec. 3 and the
supplement's architecture. ``LatentUnetGenerator`` is the U-Net of pix2pix with the code z
tiled to every level's input (``where_add="all"``, the authors' default) or to the first
only (``"input"``); ``LatentEncoder`` is their ResNet encoder E, which maps an image to the
mean and log-variance of a Gaussian over z.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from models.networks.layers import NormLayer, conv_bias

WHERE_ADD = ("all", "input")
# --netE: residual blocks after the first convolution (the authors' resnet_128 / resnet_256).
ENCODER_BLOCKS = {"resnet_128": 4, "resnet_256": 5}


def tile(z: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """z (N x nz) as N x nz x H x W maps of ``like``'s size."""
    return z.to(like.dtype)[:, :, None, None].expand(-1, -1, like.shape[2], like.shape[3])


class LatentUnetBlock(nn.Module):
    """One U-Net level whose down convolution also reads z (``nz`` > 0) tiled to its input."""

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int, nz: int, submodule: Optional[nn.Module],
                 norm_layer: NormLayer, outermost: bool = False, use_dropout: bool = False) -> None:
        super().__init__()
        self.outermost, self.nz, self.submodule = outermost, nz, submodule
        bias = conv_bias(norm_layer)
        innermost = submodule is None
        down = [] if outermost else [nn.LeakyReLU(0.2, True)]
        down.append(nn.Conv2d(input_nc + nz, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias))
        if not (outermost or innermost):
            down.append(norm_layer(inner_nc))
        up_in = inner_nc if innermost else inner_nc * 2
        up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer_nc, kernel_size=4, stride=2, padding=1,
                                                bias=True if outermost else bias)]
        up += [nn.Tanh()] if outermost else [norm_layer(outer_nc)]
        if use_dropout and not (outermost or innermost):
            up.append(nn.Dropout(0.5))
        self.down, self.up = nn.Sequential(*down), nn.Sequential(*up)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.down(torch.cat([x, tile(z, x)], 1) if self.nz else x)
        if self.submodule is not None:
            h = self.submodule(h, z)
        h = self.up(h)
        return h if self.outermost else torch.cat([h, x], 1)


class LatentUnetGenerator(nn.Module):
    """G(A, z): a U-Net of ``num_downs`` levels (unet_N: log2 N) with z at every level.

    ``forward(x)`` without z uses ``latent`` (a buffer, not saved; zeros, the prior's mean, until
    a door sets it): translate.py, export.py and the Translator run the network on images alone.
    """

    def __init__(self, input_nc: int, output_nc: int, nz: int, num_downs: int, ngf: int, norm_layer: NormLayer,
                 use_dropout: bool = False, where_add: str = "all") -> None:
        super().__init__()
        self.nz = nz
        every = nz if where_add == "all" else 0
        widths = [min(ngf * 2 ** i, ngf * 8) for i in range(num_downs)]  # each level's inner width
        # Level k (1 .. num_downs - 1) maps widths[k - 1] channels to widths[k] and back.
        block = None
        for level in range(num_downs - 1, 0, -1):
            block = LatentUnetBlock(widths[level - 1], widths[level], widths[level - 1], every, block, norm_layer,
                                    use_dropout=use_dropout and widths[level] == widths[level - 1] and
                                    block is not None and level < num_downs - 1)
        self.model = LatentUnetBlock(output_nc, ngf, input_nc, nz, block, norm_layer, outermost=True)
        self.register_buffer("latent", torch.zeros(1, nz), persistent=False)

    def forward(self, x: torch.Tensor, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        if z is None:
            z = self.latent.expand(x.shape[0], -1)
        return self.model(x, z)


class EncoderBlock(nn.Module):
    """The encoder's residual block: two 3x3 convolutions and a 2x average pooling, with a
    pooled 1x1 shortcut."""

    def __init__(self, in_nc: int, out_nc: int, norm_layer: NormLayer) -> None:
        super().__init__()
        self.conv = nn.Sequential(norm_layer(in_nc), nn.LeakyReLU(0.2, True),
                                  nn.Conv2d(in_nc, in_nc, 3, padding=1), norm_layer(in_nc), nn.LeakyReLU(0.2, True),
                                  nn.Conv2d(in_nc, out_nc, 3, padding=1), nn.AvgPool2d(2))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(in_nc, out_nc, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.shortcut(x)


class LatentEncoder(nn.Module):
    """E(B) -> (mu, logvar), each N x nz.

    The authors pool the last 8x8 map of a 256 px input (AvgPool2d(8)); an adaptive average
    pool gives the same there and takes any size that the blocks leave at least 1 px of.
    """

    def __init__(self, input_nc: int, nz: int, nef: int, n_blocks: int, norm_layer: NormLayer) -> None:
        super().__init__()
        layers = [nn.Conv2d(input_nc, nef, 4, stride=2, padding=1)]
        for n in range(1, n_blocks):
            layers.append(EncoderBlock(nef * min(n, 4), nef * min(n + 1, 4), norm_layer))
        layers += [nn.LeakyReLU(0.2, True), nn.AdaptiveAvgPool2d(1)]
        self.conv = nn.Sequential(*layers)
        width = nef * min(n_blocks, 4)
        self.fc, self.fc_var = nn.Linear(width, nz), nn.Linear(width, nz)

    def forward(self, x: torch.Tensor):
        h = self.conv(x).flatten(1)
        return self.fc(h), self.fc_var(h)
