"""Writing translated images to files at the depth and, where it can hold them, in the format
of their sources.

8-bit results keep their source's extension and format when that format holds the result's
channels: PNG, TIFF, JPEG (quality ``JPEG_QUALITY``, so lossy), BMP, WebP (lossless), PPM
(RGB) and PGM (gray); otherwise (an RGB result of a .pgm, a format not listed) they take
test.py's format for the same type and channels (``data.arrays.image_format``: PNG for gray
and RGB). Sources with more than 8 bits per sample (16-bit PNG, TIFF, PGM/PPM) give 16-bit
results over the full range, in test.py's format too: 16-bit PNG, TIFF for TIFF sources and
other channel counts. So a result of a given type and channel count is the same file from
test.py and translate.py, except that an 8-bit photo keeps its file type.
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

__all__ = ["source_bit_depth", "output_path", "write_result", "encode_png16", "JPEG_QUALITY"]

JPEG_QUALITY = 95
# 8-bit formats that keep the source's extension: suffix -> channel counts they hold.
KEPT_FORMATS = {".png": (1, 2, 3, 4), ".tif": (1, 2, 3, 4), ".tiff": (1, 2, 3, 4), ".jpg": (1, 3),
                ".jpeg": (1, 3), ".bmp": (1, 3), ".webp": (3, 4), ".ppm": (3,), ".pgm": (1,)}
_SAVE_OPTIONS = {".jpg": {"quality": JPEG_QUALITY}, ".jpeg": {"quality": JPEG_QUALITY}, ".webp": {"lossless": True}}


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
    """``out`` with the suffix ``result`` gets at ``depth``: the source's for an 8-bit result
    its format holds, else test.py's (``image_format``)."""
    array = _result_array(result[:, :, :1, :1], depth)  # one pixel tells the type and channels
    suffix = source.suffix.lower()
    if array.dtype == np.uint8 and array.shape[0] in KEPT_FORMATS.get(suffix, ()):
        return out.with_suffix(source.suffix)
    return out.with_suffix(image_format(source, array.dtype, array.shape[0]))


def write_result(result: torch.Tensor, path: Path, depth: int = 8) -> None:
    """Write a 1 x C x H x W result in [-1, 1] to ``path`` (8- or 16-bit by ``depth``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = _result_array(result, depth)
    options = _SAVE_OPTIONS.get(path.suffix.lower())
    if array.dtype == np.uint8 and (options or path.suffix.lower() in (".bmp", ".ppm", ".pgm")):
        Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)).save(path, **(options or {}))
    else:
        write_array(array, path)
