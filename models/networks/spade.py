"""SPADE's generator and style encoder (Park, Liu, Wang and Zhu, "Semantic Image Synthesis with
Spatially-Adaptive Normalization", CVPR 2019), written from the paper (Sec. 3, Fig. 2, and
the appendix's Figs. 11-14).

- ``SPADE``: a parameter-free normalization whose per-pixel scale and shift are computed from
  the segmentation map, resized to the activation (nearest), by a shared 3x3 conv + ReLU and
  two 3x3 convs: ``norm(x) * (1 + gamma(m)) + beta(m)``.
- ``SPADEResBlock``: SPADE, leaky ReLU, 3x3 conv, twice, with a learned shortcut (SPADE and a
  1x1 conv) when the channel count changes; spectral norm on its convolutions.
- ``SPADEGenerator``: from the downsampled map through a 3x3 conv (or, with a style code z, a
  linear layer) at 1/2**k of the output, then 7 residual blocks and k upsamplings.
- ``StyleEncoder``: six (five below 256 px) stride-2 3x3 convs with instance norm, on the image
  resized to 256x256, then two linear layers: the mean and log variance of the style code.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .layers import NormLayer

# --num_upsampling_layers -> upsamplings from the first block's grid to the output.
UPSAMPLINGS = {"normal": 5, "more": 6, "most": 7}


def sn(module: nn.Module) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module)


class SPADE(nn.Module):
    """Spatially-adaptive (de)normalization of ``norm_nc`` channels by a ``label_nc``-channel map."""

    def __init__(self, norm_nc: int, label_nc: int, param_free_norm: NormLayer, hidden: int = 128,
                 kernel_size: int = 3) -> None:
        super().__init__()
        self.param_free_norm = param_free_norm(norm_nc, affine=False)
        pad = kernel_size // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel_size, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel_size, padding=pad)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        actv = self.mlp_shared(segmap)
        return self.param_free_norm(x) * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResBlock(nn.Module):
    """Two (SPADE, leaky ReLU, conv) units and a shortcut, learned when fin != fout."""

    def __init__(self, fin: int, fout: int, label_nc: int, param_free_norm: NormLayer, hidden: int = 128,
                 spectral: bool = True) -> None:
        super().__init__()
        fmiddle = min(fin, fout)
        wrap = sn if spectral else (lambda m: m)
        self.learned_shortcut = fin != fout
        self.conv_0 = wrap(nn.Conv2d(fin, fmiddle, 3, padding=1))
        self.conv_1 = wrap(nn.Conv2d(fmiddle, fout, 3, padding=1))
        self.norm_0 = SPADE(fin, label_nc, param_free_norm, hidden)
        self.norm_1 = SPADE(fmiddle, label_nc, param_free_norm, hidden)
        if self.learned_shortcut:
            self.conv_s = wrap(nn.Conv2d(fin, fout, 1, bias=False))
            self.norm_s = SPADE(fin, label_nc, param_free_norm, hidden)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


class SPADEGenerator(nn.Module):
    """Segmentation map (and optional style code z) -> image of ``crop_size`` width."""

    def __init__(self, label_nc: int, output_nc: int = 3, ngf: int = 64, crop_size: int = 256,
                 num_upsampling_layers: str = "normal", z_dim: Optional[int] = None,
                 param_free_norm: NormLayer = nn.BatchNorm2d, hidden: int = 128, spectral: bool = True) -> None:
        super().__init__()
        self.num_upsampling_layers = num_upsampling_layers
        self.z_dim = z_dim
        self.size = crop_size // 2 ** UPSAMPLINGS[num_upsampling_layers]
        if self.size < 1:
            raise ValueError(f"crop_size {crop_size} is below 2**{UPSAMPLINGS[num_upsampling_layers]}")
        nf = ngf
        # With a style code the first grid comes from z; without, from the downsampled map.
        self.fc = nn.Linear(z_dim, 16 * nf * self.size * self.size) if z_dim else \
            nn.Conv2d(label_nc, 16 * nf, 3, padding=1)

        def block(fin: int, fout: int) -> SPADEResBlock:
            return SPADEResBlock(fin, fout, label_nc, param_free_norm, hidden, spectral)

        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, nf)
        final_nc = nf
        if num_upsampling_layers == "most":
            self.up_4 = block(nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, output_nc, 3, padding=1)

    def forward(self, seg: torch.Tensor, z: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.z_dim:
            if z is None:
                z = torch.randn(seg.shape[0], self.z_dim, device=seg.device)
            x = self.fc(z).view(seg.shape[0], -1, self.size, self.size)
        else:
            x = self.fc(F.interpolate(seg, size=(self.size, self.size)))
        x = self.head_0(x, seg)
        x = self.G_middle_0(up(x), seg)
        if self.num_upsampling_layers in ("more", "most"):
            x = up(x)
        x = self.G_middle_1(x, seg)
        for name in ("up_0", "up_1", "up_2", "up_3") + (("up_4",) if self.num_upsampling_layers == "most" else ()):
            x = getattr(self, name)(up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


class StyleEncoder(nn.Module):
    """Image -> (mu, logvar) of a ``z_dim`` style code (the VAE encoder of ``--use_vae``)."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, z_dim: int = 256, six_layers: bool = True) -> None:
        super().__init__()
        channels = [input_nc, ndf, ndf * 2, ndf * 4, ndf * 8, ndf * 8] + ([ndf * 8] if six_layers else [])
        layers = []
        for cin, cout in zip(channels[:-1], channels[1:]):
            layers += [sn(nn.Conv2d(cin, cout, 3, stride=2, padding=1)), nn.InstanceNorm2d(cout, affine=False),
                       nn.LeakyReLU(0.2)]
        self.layers = nn.Sequential(*layers)
        self.size = 4  # 256 / 2**6; five layers meet a 4x4 grid at 128 px, as the adaptive pooling below
        self.fc_mu = nn.Linear(ndf * 8 * self.size * self.size, z_dim)
        self.fc_var = nn.Linear(ndf * 8 * self.size * self.size, z_dim)

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if image.shape[2:] != (256, 256):
            image = F.interpolate(image, size=(256, 256), mode="bilinear", align_corners=False)
        x = self.layers(image)
        x = F.adaptive_avg_pool2d(x, self.size).flatten(1)
        return self.fc_mu(x), self.fc_var(x)


def up(x: torch.Tensor) -> torch.Tensor:
    """Twice the size, nearest neighbour (SPADE's ``nn.Upsample(scale_factor=2)``)."""
    return F.interpolate(x, scale_factor=2.0)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + eps * sigma, eps ~ N(0, I)."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma) || N(0, I)), summed over the batch and the code (the paper's L_KLD)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
