"""StarGAN v2's networks, written from the paper.

Choi, Uh, Yoo and Ha, "StarGAN v2: Diverse Image Synthesis for Multiple Domains", CVPR 2020,
Sec. 2 and Appendix A (Tables 5-7):

- ``StyleGenerator`` G(x, s): pre-activation residual blocks with instance norm down to a
  bottleneck (16x16 at 256 px), two more there, then residual blocks whose norms are AdaIN
  driven by the style code s, back up to the image size; no output non-linearity.
- ``MappingNetwork`` F(z, y): an MLP shared by the domains, then one head per domain.
- ``StyleEncoder`` E(x, y) and ``MultiTaskDiscriminator`` D(x, y): the same residual trunk
  down to 1x1; E has one linear head per domain giving s, D one output per domain (its
  real/fake logit for that domain). Both read the head of domain y.

Residual outputs are divided by sqrt(2) (unit variance, as the paper's blocks).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MAX_WIDTH = 512


def pick(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Row i of ``out`` (N x K x ...) at domain y[i]."""
    return out[torch.arange(out.shape[0], device=out.device), y]


class ResBlock(nn.Module):
    """Pre-activation residual block (instance norm with ``normalize``), optionally halving the size."""

    def __init__(self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False) -> None:
        super().__init__()
        self.downsample = downsample
        self.norm1 = nn.InstanceNorm2d(dim_in, affine=True) if normalize else nn.Identity()
        self.norm2 = nn.InstanceNorm2d(dim_in, affine=True) if normalize else nn.Identity()
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, padding=1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.shortcut = nn.Conv2d(dim_in, dim_out, 1, bias=False) if dim_in != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.shortcut(x)
        h = self.conv1(F.leaky_relu(self.norm1(x), 0.2))
        if self.downsample:
            skip, h = F.avg_pool2d(skip, 2), F.avg_pool2d(h, 2)
        h = self.conv2(F.leaky_relu(self.norm2(h), 0.2))
        return (skip + h) / math.sqrt(2)


class AdaIN(nn.Module):
    """Instance norm whose scale (1 + gamma) and shift beta come from the style code."""

    def __init__(self, style_dim: int, channels: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(s)[:, :, None, None].chunk(2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdaINResBlock(nn.Module):
    """The decoder's residual block: AdaIN norms, optionally doubling the size (nearest)."""

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.norm1, self.norm2 = AdaIN(style_dim, dim_in), AdaIN(style_dim, dim_out)
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, padding=1)
        self.shortcut = nn.Conv2d(dim_in, dim_out, 1, bias=False) if dim_in != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.norm1(x, s), 0.2)
        if self.upsample:
            x, h = F.interpolate(x, scale_factor=2, mode="nearest"), F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv2(F.leaky_relu(self.norm2(self.conv1(h), s), 0.2))
        return (self.shortcut(x) + h) / math.sqrt(2)


def widths(first: int, n: int) -> list:
    """The widths after each of ``n`` halvings: doubling from ``first`` up to MAX_WIDTH."""
    return [min(first * 2 ** (i + 1), MAX_WIDTH) for i in range(n)]


class StyleGenerator(nn.Module):
    """G(x, s); ``n_down`` halvings (log2(size) - 4 in the paper: 16x16 at the bottleneck).

    ``forward(x)`` without s uses ``style`` (a buffer, not saved; zeros until a door sets it),
    so translate.py, export.py and the Translator run it on images alone.
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int, style_dim: int, n_down: int) -> None:
        super().__init__()
        self.style_dim = style_dim
        self.from_rgb = nn.Conv2d(input_nc, ngf, 1)
        dims = [ngf] + widths(ngf, n_down)
        self.encode = nn.ModuleList(ResBlock(a, b, normalize=True, downsample=True) for a, b in zip(dims, dims[1:]))
        self.encode.extend(ResBlock(dims[-1], dims[-1], normalize=True) for _ in range(2))
        self.decode = nn.ModuleList(AdaINResBlock(dims[-1], dims[-1], style_dim) for _ in range(2))
        self.decode.extend(AdaINResBlock(b, a, style_dim, upsample=True) for a, b in zip(dims[-2::-1], dims[:0:-1]))
        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(ngf, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(ngf, output_nc, 1))
        self.register_buffer("style", torch.zeros(1, style_dim), persistent=False)

    def forward(self, x: torch.Tensor, s: torch.Tensor = None) -> torch.Tensor:
        if s is None:
            s = self.style.expand(x.shape[0], -1)
        h = self.from_rgb(x)
        for block in self.encode:
            h = block(h)
        for block in self.decode:
            h = block(h, s)
        return self.to_rgb(h)


class MappingNetwork(nn.Module):
    """F(z, y): 4 shared layers of ``hidden`` units, then per domain 3 more and the style code."""

    def __init__(self, latent_dim: int, style_dim: int, num_domains: int, hidden: int = 512) -> None:
        super().__init__()
        shared = [nn.Linear(latent_dim, hidden), nn.ReLU()]
        for _ in range(3):
            shared += [nn.Linear(hidden, hidden), nn.ReLU()]
        self.shared = nn.Sequential(*shared)
        self.heads = nn.ModuleList(
            nn.Sequential(*[m for _ in range(3) for m in (nn.Linear(hidden, hidden), nn.ReLU())],
                          nn.Linear(hidden, style_dim)) for _ in range(num_domains))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.shared(z)
        return pick(torch.stack([head(h) for head in self.heads], dim=1), y)


class DomainTrunk(nn.Module):
    """The trunk of E and D: ``n_down`` residual halvings (to 4x4), a 4x4 conv to 1x1, then
    ``heads(features)`` (N x K x D) read at domain y."""

    def __init__(self, input_nc: int, ndf: int, n_down: int) -> None:
        super().__init__()
        dims = [ndf] + widths(ndf, n_down)
        layers = [nn.Conv2d(input_nc, ndf, 3, padding=1)]
        layers += [ResBlock(a, b, downsample=True) for a, b in zip(dims, dims[1:])]
        layers += [nn.LeakyReLU(0.2), nn.Conv2d(dims[-1], dims[-1], 4), nn.LeakyReLU(0.2)]
        self.trunk = nn.Sequential(*layers)
        self.width = dims[-1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).flatten(1)


class StyleEncoder(DomainTrunk):
    """E(x, y) -> the style code of x as an image of domain y."""

    def __init__(self, input_nc: int, ndf: int, n_down: int, style_dim: int, num_domains: int) -> None:
        super().__init__(input_nc, ndf, n_down)
        self.heads = nn.ModuleList(nn.Linear(self.width, style_dim) for _ in range(num_domains))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return pick(torch.stack([head(h) for head in self.heads], dim=1), y)


class MultiTaskDiscriminator(DomainTrunk):
    """D(x, y) -> one real/fake logit per image, from the output of domain y."""

    def __init__(self, input_nc: int, ndf: int, n_down: int, num_domains: int) -> None:
        super().__init__(input_nc, ndf, n_down)
        self.out = nn.Conv2d(self.width, num_domains, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.features(x)[:, :, None, None]
        return pick(self.out(h).flatten(1), y)
