"""Writing translated images to files at the depth and, where it can hold them, in the format
of their sources.

8-bit results keep their source's extension and format when that format holds the result's
channels: PNG, TIFF, JPEG (quality ``JPEG_QUALITY``, so lossy), BMP, WebP (lossless), PPM
(RGB) and PGM (gray); otherwise (an RGB result of a .pgm, a format not listed) they take
test.py's format for the same type and channels (``data.codec.image_format``). Sources with
more than 8 bits per sample (16-bit PNG, TIFF, PGM/PPM) give 16-bit results over the full
range, in test.py's format too: 16-bit PNG for 1 to 4 channels, TIFF for TIFF sources and
other channel counts. So a result of a given type and channel count is the same file from
test.py and translate.py, except that an 8-bit photo keeps its file type. The files are
written by the one codec, ``data.codec.write_array``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from data.codec import JPEG_QUALITY, bit_depth, encode_png16, holds, image_format, write_array
from pix2cycle.convert import to_uint16_hwc, to_unit_hwc

__all__ = ["source_bit_depth", "output_path", "write_result", "encode_png16", "JPEG_QUALITY"]

source_bit_depth = bit_depth  # bits per sample of a source file (8 when it cannot be told)


def _result_array(result: torch.Tensor, depth: int) -> np.ndarray:
    """1 x C x H x W in [-1, 1] -> C x H x W, uint8 as test.py's 8-bit PNGs (at most 3
    channels) or uint16 over the full range."""
    array = to_unit_hwc(result, np.uint8) if depth <= 8 else to_uint16_hwc(result)
    return array.transpose(2, 0, 1)


def output_path(out: Path, depth: int, source: Path, result: torch.Tensor) -> Path:
    """``out`` with the suffix ``result`` gets at ``depth``: the source's for an 8-bit result
    its format holds, else test.py's (``image_format``)."""
    array = _result_array(result[:, :, :1, :1], depth)  # one pixel tells the type and channels
    if array.dtype == np.uint8 and holds(source.suffix, array.dtype, array.shape[0]):
        return out.with_suffix(source.suffix)
    return out.with_suffix(image_format(source, array.dtype, array.shape[0]))


def write_result(result: torch.Tensor, path: Path, depth: int = 8) -> None:
    """Write a 1 x C x H x W result in [-1, 1] to ``path`` (8- or 16-bit by ``depth``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_array(_result_array(result, depth), path)
