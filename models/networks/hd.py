"""pix2pixHD's generators and feature encoder (Wang et al., "High-Resolution Image Synthesis and
Semantic Manipulation with Conditional GANs", CVPR 2018), laid out as in NVIDIA/pix2pixHD
models/networks.py (``GlobalGenerator``, ``LocalEnhancer``, ``Encoder``) so that the module
names, and with them the saved weights' keys, are theirs: ``model`` (G1), ``model<n>_1`` /
``model<n>_2`` (the n-th enhancer's front and back end).

- ``GlobalGenerator`` (G1): 7x7 conv, ``n_downsampling`` stride-2 3x3 convs, ``n_blocks``
  ResNet blocks, as many transposed convs, 7x7 conv and tanh.
- ``LocalEnhancer`` (G2, ...): G1 at 1/2**n of the resolution with ``ngf * 2**n`` filters and
  without its last three layers, and per enhancer a front end (7x7 conv, one stride-2 conv)
  whose output is added to the coarser result, then ``n_blocks_local`` ResNet blocks and one
  transposed conv (the paper's Fig. 3).
- ``FeatureEncoder`` (E): an encoder-decoder whose output is averaged over each instance
  (instance-wise average pooling, Sec. 3.4), so each object gets one feature vector.
"""

from __future__ import annotations

from typing import List

import torch
from torch import nn

from .generators import ResnetBlock
from .layers import NormLayer


def _front(input_nc: int, ngf: int, norm_layer: NormLayer) -> List[nn.Module]:
    return [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0), norm_layer(ngf), nn.ReLU(True)]


def _down(nc: int, norm_layer: NormLayer) -> List[nn.Module]:
    return [nn.Conv2d(nc, nc * 2, kernel_size=3, stride=2, padding=1), norm_layer(nc * 2), nn.ReLU(True)]


def _up(nc: int, norm_layer: NormLayer) -> List[nn.Module]:
    return [nn.ConvTranspose2d(nc, nc // 2, kernel_size=3, stride=2, padding=1, output_padding=1),
            norm_layer(nc // 2), nn.ReLU(True)]


def _to_image(ngf: int, output_nc: int) -> List[nn.Module]:
    return [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]


def _encoder_decoder(input_nc: int, output_nc: int, ngf: int, n_downsampling: int, n_blocks: int,
                     norm_layer: NormLayer) -> List[nn.Module]:
    layers = _front(input_nc, ngf, norm_layer)
    for i in range(n_downsampling):
        layers += _down(ngf * 2 ** i, norm_layer)
    # pix2pixHD's blocks keep their conv biases under instance norm (it has no affine part).
    layers += [ResnetBlock(ngf * 2 ** n_downsampling, "reflect", norm_layer, False, True) for _ in range(n_blocks)]
    for i in range(n_downsampling):
        layers += _up(ngf * 2 ** (n_downsampling - i), norm_layer)
    return layers + _to_image(ngf, output_nc)


class GlobalGenerator(nn.Module):
    """G1: a ResNet encoder-decoder (pix2pixHD: 4 downsamplings, 9 blocks)."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, n_downsampling: int = 4, n_blocks: int = 9,
                 norm_layer: NormLayer = nn.InstanceNorm2d) -> None:
        super().__init__()
        self.model = nn.Sequential(*_encoder_decoder(input_nc, output_nc, ngf, n_downsampling, n_blocks, norm_layer))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def image_pyramid(x: torch.Tensor, levels: int) -> List[torch.Tensor]:
    """``x`` and ``levels`` halvings of it (3x3 average pooling, as pix2pixHD downsamples)."""
    pool = nn.functional.avg_pool2d
    out = [x]
    for _ in range(levels):
        out.append(pool(out[-1], 3, stride=2, padding=1, count_include_pad=False))
    return out


class LocalEnhancer(nn.Module):
    """G1 at the coarsest scale, then ``n_local_enhancers`` enhancers, each doubling the resolution."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 32, n_downsampling: int = 4, n_blocks: int = 9,
                 n_local_enhancers: int = 1, n_blocks_local: int = 3,
                 norm_layer: NormLayer = nn.InstanceNorm2d) -> None:
        super().__init__()
        self.n_local_enhancers = n_local_enhancers
        coarse = _encoder_decoder(input_nc, output_nc, ngf * 2 ** n_local_enhancers, n_downsampling, n_blocks,
                                  norm_layer)
        self.model = nn.Sequential(*coarse[:-3])  # G1's features, without its output layers
        for n in range(1, n_local_enhancers + 1):
            nc = ngf * 2 ** (n_local_enhancers - n)
            back = [ResnetBlock(nc * 2, "reflect", norm_layer, False, True) for _ in range(n_blocks_local)]
            back += _up(nc * 2, norm_layer)
            if n == n_local_enhancers:
                back += _to_image(ngf, output_nc)
            setattr(self, f"model{n}_1", nn.Sequential(*_front(input_nc, nc, norm_layer), *_down(nc, norm_layer)))
            setattr(self, f"model{n}_2", nn.Sequential(*back))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = image_pyramid(x, self.n_local_enhancers)
        out = self.model(pyramid[-1])
        for n in range(1, self.n_local_enhancers + 1):
            front, back = getattr(self, f"model{n}_1"), getattr(self, f"model{n}_2")
            out = back(front(pyramid[self.n_local_enhancers - n]) + out)
        return out

    def outermost_parameters(self) -> List[nn.Parameter]:
        """The last enhancer's weights: what ``--niter_fix_global`` trains alone at first."""
        n = self.n_local_enhancers
        return [p for name, p in self.named_parameters() if name.startswith(f"model{n}_")]


def instance_mean(features: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
    """Each channel of ``features`` (B x C x H x W) replaced, inside each instance of ``inst``
    (B x 1 x H x W ids), by its mean there: instance-wise average pooling."""
    b, c = features.shape[:2]
    ids = inst.long()
    _, index = torch.unique(ids, return_inverse=True)  # dense ids 0..K-1 over the batch
    index = index + torch.arange(b, device=ids.device).view(b, 1, 1, 1) * (int(index.max()) + 1)
    flat = index.view(b, 1, -1).expand(b, c, -1).permute(1, 0, 2).reshape(c, -1)
    values = features.permute(1, 0, 2, 3).reshape(c, -1)
    segments = int(index.max()) + 1
    sums = torch.zeros(c, segments, device=features.device, dtype=features.dtype).scatter_add_(1, flat, values)
    counts = torch.zeros(segments, device=features.device, dtype=features.dtype).scatter_add_(
        0, flat[0], torch.ones_like(values[0]))
    means = sums / counts.clamp_min(1)
    return means.gather(1, flat).view(c, b, *features.shape[2:]).permute(1, 0, 2, 3)


class FeatureEncoder(nn.Module):
    """E: image -> ``feat_num`` channels, constant inside each instance."""

    def __init__(self, input_nc: int, feat_num: int = 3, nef: int = 16, n_downsampling: int = 4,
                 norm_layer: NormLayer = nn.InstanceNorm2d) -> None:
        super().__init__()
        layers = _encoder_decoder(input_nc, feat_num, nef, n_downsampling, 0, norm_layer)
        self.model = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, inst: torch.Tensor) -> torch.Tensor:
        return instance_mean(self.model(image), inst)
