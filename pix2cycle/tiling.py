"""Tiled translation of images too large to translate at once.

The image is cut into tiles of ``tile`` pixels that overlap by at least ``overlap``; each
tile is translated on its own and the results are blended where tiles overlap, with
weights that ramp from one tile to the next (linear or cosine; the two ramps of an overlap
always sum to one). A pixel covered by a single tile takes that tile's output unchanged.

Tiles start on multiples of the generator's size multiple: strided convolutions then see
the same sampling grid in a tile as in the whole image. What that buys depends on the
normalization (docs/inference.md): with ``--norm none`` or batch norm using its running
statistics, a pixel farther than the network's receptive radius from every tile edge gets
exactly the whole image's result (up to rounding); instance norm and batch norm with
per-image statistics normalize each tile by its own statistics, so every pixel differs a
little from the untiled result.
"""

from __future__ import annotations

import math
from typing import Callable, List

import torch

from util.errors import UserError
from util.registry import Registry

# Weight of the incoming tile at relative position t in (0, 1) of an overlap.
RAMPS = Registry("ramp")
RAMPS.add("linear", lambda t: t)
RAMPS.add("cosine", lambda t: 0.5 - 0.5 * torch.cos(math.pi * t))


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> List[int]:
    """Start offsets of the tiles along one side of ``length`` pixels.

    Starts are multiples of ``multiple``, consecutive tiles overlap by at least ``overlap``
    and the last tile ends at ``length`` (it is shorter than ``tile`` when needed).
    """
    if length <= tile:
        return [0]
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    starts = [0]
    while starts[-1] + tile < length:
        starts.append(starts[-1] + stride)
    return starts


def _axis_weights(length: int, starts: List[int], tile: int, ramp: str) -> List[torch.Tensor]:
    """Blending weights of each tile along one axis: 1 inside, ramps where a neighbour overlaps."""
    fn = RAMPS[ramp]
    weights = []
    for i, start in enumerate(starts):
        end = min(start + tile, length)
        w = torch.ones(end - start, dtype=torch.float64)
        if i > 0:
            n = min(starts[i - 1] + tile, length) - start
            w[:n] *= fn(torch.arange(1, n + 1, dtype=torch.float64) / (n + 1))
        if i + 1 < len(starts):
            n = end - starts[i + 1]
            w[end - start - n:] *= fn(torch.arange(n, 0, -1, dtype=torch.float64) / (n + 1))
        weights.append(w.float())
    return weights


def check_tiling(tile: int, overlap: int) -> None:
    """``UserError`` unless ``0 <= overlap < tile``."""
    if tile < 1:
        raise UserError(f"--tile must be positive, not {tile}")
    if not 0 <= overlap < tile:
        raise UserError(f"--tile_overlap must be at least 0 and smaller than --tile ({tile}), not {overlap}")


def translate_tiled(forward: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: int,
                    overlap: int = 32, multiple: int = 1, ramp: str = "cosine") -> torch.Tensor:
    """Translate ``image`` (1 x C x H x W) tile by tile with ``forward`` and blend the tiles.

    ``forward`` maps a 1 x C x h x w tensor to a 1 x C' x h x w tensor of any size (the
    Translator pads each tile to what the generator needs). The result is on the CPU, float32.
    """
    check_tiling(tile, overlap)
    RAMPS.get(ramp)  # an unknown ramp is refused before any tile is translated
    _, _, height, width = image.shape
    ys, xs = tile_starts(height, tile, overlap, multiple), tile_starts(width, tile, overlap, multiple)
    wy, wx = _axis_weights(height, ys, tile, ramp), _axis_weights(width, xs, tile, ramp)
    out = None
    total = torch.zeros(height, width)
    for y0, weight_y in zip(ys, wy):
        for x0, weight_x in zip(xs, wx):
            piece = image[:, :, y0:y0 + tile, x0:x0 + tile]
            result = forward(piece).float().cpu()[0]
            if out is None:
                out = torch.zeros(result.shape[0], height, width)
            weight = weight_y[:, None] * weight_x[None, :]
            h, w = piece.shape[2:]
            out[:, y0:y0 + h, x0:x0 + w] += result * weight
            total[y0:y0 + h, x0:x0 + w] += weight
    return (out / total)[None]
