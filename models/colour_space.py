"""How the inference doors hand an image to a generator and turn its output into an image.

A model plugin whose generator does not take and give the images themselves (colorization:
L in, ab out) declares a ``ColourSpace`` as its ``colour_space``; translate.py and
``pix2cycle.Translator`` then read and write images and convert on both sides of the
generator. Images and generator tensors are ``N x C x H x W`` in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch


def _same(image: torch.Tensor) -> torch.Tensor:
    return image


def _output(net_input: torch.Tensor, net_output: torch.Tensor) -> torch.Tensor:
    return net_output


@dataclass(frozen=True)
class ColourSpace:
    """``encode`` turns an image into the generator's input; ``decode`` takes that input and
    the generator's output and gives the image. ``image_nc``: channels of the images read
    and written (None: the generator's own). ``graph``: what an exported generator (which
    holds no conversion) takes and gives, printed by export.py."""

    name: str = "image"
    image_nc: Optional[Tuple[int, int]] = None
    encode: Callable[[torch.Tensor], torch.Tensor] = _same
    decode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = _output
    graph: str = ""


# The generator takes and gives images (pix2pix, CycleGAN, CUT, ...).
IMAGE = ColourSpace()
