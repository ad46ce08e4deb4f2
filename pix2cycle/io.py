"""Writing translated images to files at the depth of their sources.

8-bit sources give 8-bit results, sources with more than 8 bits per sample (16-bit PNG,
TIFF, PGM/PPM) 16-bit results over the full range. The file format is test.py's for the
same type and channels (``data.arrays.image_format``): PNG for gray and RGB, TIFF for 16-bit
TIFF sources and other channel counts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
import torch
from PIL import Image

from data.arrays import encode_png16, image_format, write_array
from data.image_folder import DECODE_ERRORS, TIFF_EXTENSIONS, png_bit_depth
from pix2cycle.convert import to_uint16_hwc, to_unit_hwc

__all__ = ["source_bit_depth", "output_path", "write_result", "encode_png16"]


def source_bit_depth(path: Path) -> int:
    """Bits per sample of the image file at ``path`` (8 when it cannot be told)."""
    try:
        if path.suffix.lower() in TIFF_EXTENSIONS:
            with tifffile.TiffFile(path) as tif:
                return int(tif.pages[0].bitspersample or 8)
        depth = png_bit_depth(path)
        if depth is not None:
            return depth
        with Image.open(path) as img:
            return 16 if img.mode.startswith("I") else 8
    except DECODE_ERRORS:
        return 8


def _result_array(result: torch.Tensor, depth: int) -> np.ndarray:
    """1 x C x H x W in [-1, 1] -> C x H x W, uint8 as test.py's 8-bit PNGs (at most 3
    channels) or uint16 over the full range."""
    array = to_unit_hwc(result, np.uint8) if depth <= 8 else to_uint16_hwc(result)
    return array.transpose(2, 0, 1)


def output_path(out: Path, depth: int, source: Path, result: torch.Tensor) -> Path:
    """``out`` with the suffix that ``result`` gets at ``depth`` (``image_format``)."""
    array = _result_array(result[:, :, :1, :1], depth)  # one pixel tells the type and channels
    return out.with_suffix(image_format(source, array.dtype, array.shape[0]))


def write_result(result: torch.Tensor, path: Path, depth: int = 8) -> None:
    """Write a 1 x C x H x W result in [-1, 1] to ``path`` (8- or 16-bit by ``depth``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_array(_result_array(result, depth), path)
