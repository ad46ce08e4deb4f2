"""Writing translated images to files at the depth and, where it can hold them, in the format
of their sources.

8-bit results keep their source's extension and format when that format holds the result's
channels: PNG, TIFF, JPEG (quality ``JPEG_QUALITY``, so lossy), BMP, WebP (lossless), PPM
(RGB) and PGM (gray); otherwise (an RGB result of a .pgm, a format not listed) they are PNGs.
Sources with more than 8 bits per sample (16-bit PNG, TIFF, PGM/PPM) give 16-bit files over
the full range: TIFF for TIFF sources, PNG otherwise. PIL writes only gray 16-bit PNGs, so
16-bit PNGs are encoded here (a few lines of zlib).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import tifffile
import torch
from PIL import Image

from data.image_folder import DECODE_ERRORS, PNG_SIGNATURE, TIFF_EXTENSIONS, png_bit_depth
from pix2cycle.convert import to_uint16_hwc, to_unit_hwc
from util.util import save_image

# Channels -> PNG color type: gray, gray + alpha, RGB, RGBA.
PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


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


JPEG_QUALITY = 95
# 8-bit formats that keep the source's extension: suffix -> channel counts they hold.
KEPT_FORMATS = {".png": (1, 2, 3, 4), ".tif": (1, 2, 3, 4), ".tiff": (1, 2, 3, 4), ".jpg": (1, 3),
                ".jpeg": (1, 3), ".bmp": (1, 3), ".webp": (3, 4), ".ppm": (3,), ".pgm": (1,)}
_SAVE_OPTIONS = {".jpg": {"quality": JPEG_QUALITY}, ".jpeg": {"quality": JPEG_QUALITY}, ".webp": {"lossless": True}}


def output_path(out: Path, depth: int, source: Path, channels: int = 3) -> Path:
    """``out`` with the suffix its content gets: the source's where its format holds a result
    of ``channels`` at ``depth`` (deep results: TIFF only), else .png."""
    suffix = source.suffix.lower()
    kept = suffix in TIFF_EXTENSIONS if depth > 8 else channels in KEPT_FORMATS.get(suffix, ())
    return out.with_suffix(source.suffix if kept else ".png")


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_png16(array: np.ndarray) -> bytes:
    """An H x W x C (C = 1..4) uint16 array as the bytes of a 16-bit PNG."""
    height, width, channels = array.shape
    rows = array.astype(">u2").reshape(height, width * channels).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)  # filter type 0 per row
    header = struct.pack(">IIBBBBB", width, height, 16, PNG_COLOR_TYPES[channels], 0, 0, 0)
    return (PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
            + _png_chunk(b"IEND", b""))


def write_result(result: torch.Tensor, path: Path, depth: int = 8) -> None:
    """Write a 1 x C x H x W result in [-1, 1] to ``path`` (8- or 16-bit by ``depth``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if depth <= 8:
        array = to_unit_hwc(result, np.uint8)
        image = array[:, :, 0] if array.shape[2] == 1 else array
        options = _SAVE_OPTIONS.get(path.suffix.lower())
        if options:
            Image.fromarray(image).save(path, **options)
        else:
            save_image(image, path)
        return
    array = to_uint16_hwc(result)
    if path.suffix.lower() in TIFF_EXTENSIONS:
        tifffile.imwrite(path, array[:, :, 0] if array.shape[2] == 1 else array,
                         photometric="minisblack" if array.shape[2] == 1 else "rgb")
    else:
        path.write_bytes(encode_png16(array))
