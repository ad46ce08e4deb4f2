"""Volumetric networks for pix2pix3d, and sliding-window inference over whole volumes.

The 3-D U-Net and PatchGAN are the 2-D ones of ``generators`` and ``discriminators`` built
with 3-D convolutions (``dims=3``): ``--netG unet_N`` halves each side log2(N) times, so
patch sides must be multiples of N; ``--netD basic`` / ``n_layers`` are the PatchGANs
(``basic`` needs sides of at least 24, ``n_layers`` with ``--n_layers_D 2`` at least 12).
Norm names are those of ``--norm``, mapped to their 3-D layers in ``NORM_LAYERS_3D``.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence, Tuple

import torch
from torch import nn

from util.errors import UserError
from util.registry import Registry

from .discriminators import DISCRIMINATORS, NLayerDiscriminator, discriminator_min_size
from .generators import GENERATORS, UnetGenerator, generator_size_multiple
from .layers import NormLayer, _no_norm, init_weights

NORM_LAYERS_3D = Registry("norm for volumes")
NORM_LAYERS_3D.add("batch", functools.partial(nn.BatchNorm3d, affine=True, track_running_stats=True))
NORM_LAYERS_3D.add("instance", functools.partial(nn.InstanceNorm3d, affine=False, track_running_stats=False))
NORM_LAYERS_3D.add("syncbatch", functools.partial(nn.SyncBatchNorm, affine=True, track_running_stats=True))
NORM_LAYERS_3D.add("none", _no_norm)
# --netD name -> layers of the 3-D PatchGAN (None: --n_layers_D).
PATCH_LAYERS_3D = {"basic": 3, "n_layers": None}


def _norm_3d(norm: str) -> NormLayer:
    return NORM_LAYERS_3D.get(norm)


def generator_3d_refusal(netG: str) -> Optional[str]:
    """Why ``--netG netG`` has no 3-D form (None: it has one, ``unet_N``)."""
    if netG.startswith("unet_") and netG in GENERATORS:
        return None
    unets = sorted((n for n in GENERATORS if n.startswith("unet_")), key=generator_size_multiple)
    return f"--netG: only the U-Nets have a 3-D form, for volumes: {', '.join(unets)}"


def discriminator_3d_refusal(netD: str) -> Optional[str]:
    """Why ``--netD netD`` has no 3-D form (None: it has one)."""
    if netD in PATCH_LAYERS_3D:
        return None
    return f"--netD {netD} has no 3-D form; available for volumes: {', '.join(PATCH_LAYERS_3D)}"


def unet_halvings(netG: str) -> int:
    """log2(N) of ``unet_N``; other generators have no 3-D form."""
    reason = generator_3d_refusal(netG)
    if reason is not None:
        raise UserError(reason)
    return generator_size_multiple(netG).bit_length() - 1


def define_G3d(input_nc: int, output_nc: int, ngf: int, netG: str, norm: str = "instance",
               use_dropout: bool = False, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """The 3-D U-Net of ``unet_N``, initialized, on the CPU."""
    net = UnetGenerator(input_nc, output_nc, unet_halvings(netG), ngf, _norm_3d(norm), use_dropout, dims=3)
    return init_weights(net, init_type, init_gain)


def define_D3d(input_nc: int, ndf: int, netD: str, n_layers_D: int = 3, norm: str = "instance",
               init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """The 3-D PatchGAN of ``basic`` or ``n_layers``, initialized, on the CPU."""
    reason = discriminator_3d_refusal(netD)
    if reason is not None:
        raise UserError(reason)
    n_layers = PATCH_LAYERS_3D[netD] or n_layers_D
    net = NLayerDiscriminator(input_nc, ndf, n_layers, _norm_3d(norm), dims=3)
    return init_weights(net, init_type, init_gain)


def check_patch_size(patch: Sequence[int], netG: str, netD: str, n_layers_D: int) -> None:
    """Patch sides must be multiples of the U-Net's size and large enough for the PatchGAN."""
    multiple = generator_size_multiple(netG)
    smallest = max(multiple, discriminator_min_size(netD, n_layers_D) if netD in DISCRIMINATORS else 1)
    text = ",".join(map(str, patch))
    if any(p % multiple for p in patch):
        raise UserError(f"--patch_size {text} must be multiples of {multiple} for --netG {netG}")
    if min(patch) < smallest:
        raise UserError(f"--patch_size {text} is too small for --netG {netG} and --netD {netD} "
                        f"(--n_layers_D {n_layers_D}): sides of at least {smallest} are needed "
                       f"(--netD n_layers --n_layers_D 2 takes sides from 12)")


def _ramp(size: int, device: torch.device) -> torch.Tensor:
    """Blending weights along one axis: highest in the middle, small but not zero at the edges."""
    position = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    return 1.0 - (2.0 * position - 1.0).abs() * 0.9


def _starts(size: int, patch: int, stride: int) -> list:
    last = max(size - patch, 0)
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)  # the last window ends at the border
    return starts


def sliding_window(net: Callable[[torch.Tensor], torch.Tensor], volume: torch.Tensor,
                   patch: Tuple[int, int, int], overlap: float = 0.5, out_channels: int = 1) -> torch.Tensor:
    """``net`` applied to a (N, C, D, H, W) volume of any shape, patch by patch.

    Windows of ``patch`` overlap by ``overlap`` (0 <= overlap < 1) and are blended with
    weights that fall towards their edges, so seams do not show. A side shorter than the
    patch is padded (replicating the border) and cropped back afterwards.
    """
    if not 0.0 <= overlap < 1.0:
        raise UserError(f"--overlap {overlap} must be in [0, 1)")
    shape = volume.shape[2:]
    padding = [max(p - s, 0) for s, p in zip(shape, patch)]
    if any(padding):
        pads = [x for pad in reversed(padding) for x in (0, pad)]
        volume = nn.functional.pad(volume, pads, mode="replicate")
    size = volume.shape[2:]
    strides = [max(1, int(p * (1.0 - overlap))) for p in patch]
    weight = (_ramp(patch[0], volume.device)[:, None, None] * _ramp(patch[1], volume.device)[None, :, None]
              * _ramp(patch[2], volume.device)[None, None, :])
    total = volume.new_zeros((volume.shape[0], out_channels, *size), dtype=torch.float32)
    norm = volume.new_zeros(size, dtype=torch.float32)
    for z in _starts(size[0], patch[0], strides[0]):
        for y in _starts(size[1], patch[1], strides[1]):
            for x in _starts(size[2], patch[2], strides[2]):
                box = (slice(z, z + patch[0]), slice(y, y + patch[1]), slice(x, x + patch[2]))
                out = net(volume[(slice(None), slice(None)) + box]).float()
                total[(slice(None), slice(None)) + box] += out * weight
                norm[box] += weight
    result = total / norm
    return result[:, :, :shape[0], :shape[1], :shape[2]]
