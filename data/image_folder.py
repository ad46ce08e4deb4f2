"""Finding image files and reading them into tensors.

``make_dataset`` lists images under a folder (recursively, sorted); ``load_image`` reads one
into a ``C x H x W`` tensor with the requested number of channels. 8-bit files (JPEG, 8-bit
PNG, BMP, ...) give ``uint8`` tensors holding the bytes PIL decodes, so that the transforms
can resize them with PIL as the reference does (see ``data.base_dataset``). High bit depths
give float32 in ``[0, 1]`` and are kept: a 16-bit PNG or TIFF is divided by its real maximum
(65535, or ``2**bits - 1`` for TIFFs that declare fewer bits), never squeezed through 8 bits.
``to_unit_float`` turns either kind into float32 in ``[0, 1]``. Files that cannot be decoded
raise ``UnreadableImageError`` so a dataset can skip them.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import tifffile
import torch
from PIL import Image, UnidentifiedImageError

from util.errors import UserError

PathLike = Union[str, Path]

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
TIFF_EXTENSIONS = (".tif", ".tiff")

# ITU-R 601-2 luma, the weights PIL uses for convert("L"): float images get the same gray
# as 8-bit ones, which PIL converts itself (in fixed point, as the reference does).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

# Errors a decoder raises on a broken, truncated or foreign file.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, RuntimeError, EOFError, struct.error,
                 zlib.error, UnidentifiedImageError, Image.DecompressionBombError,
                 tifffile.TiffFileError, IndexError, KeyError)


class UnreadableImageError(Exception):
    """An image file exists but cannot be decoded (corrupt, truncated, empty, unsupported)."""

    def __init__(self, path: PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def is_image_file(filename: PathLike) -> bool:
    """True when the name ends with an image extension (any case)."""
    return str(filename).lower().endswith(IMG_EXTENSIONS)


def make_dataset(dir: PathLike, max_dataset_size: float = float("inf")) -> List[str]:
    """Sorted paths of all images under ``dir`` (recursive), at most ``max_dataset_size``."""
    if not os.path.isdir(dir):
        raise UserError(f"{dir} is not a directory")
    paths = []
    for root, dirs, files in os.walk(dir, followlinks=True):
        dirs.sort()
        paths.extend(os.path.join(root, f) for f in files if is_image_file(f))
    paths.sort()
    if max_dataset_size < len(paths):
        paths = paths[:int(max_dataset_size)]
    return paths


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_bit_depth(path: PathLike) -> Optional[int]:
    """Bit depth from the PNG header (IHDR comes first, bit depth is byte 24); None when the
    file is not a PNG, whatever its suffix."""
    with open(path, "rb") as f:
        head = f.read(25)
    return head[24] if len(head) == 25 and head[:8] == PNG_SIGNATURE else None


def _png_bit_depth(path: PathLike) -> int:
    return png_bit_depth(path) or 8  # not a valid PNG: let PIL produce the error message


def _read_png16(path: PathLike) -> torch.Tensor:
    # PIL reads 16-bit RGB PNGs as 8-bit RGB, so decode them with torchvision when it can
    # (its image decoders are deprecated from 0.29 on; without them PIL is the fallback).
    try:
        from torchvision.io import ImageReadMode, decode_png
    except ImportError:
        return _read_pil(path)
    data = torch.from_numpy(np.fromfile(path, dtype=np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        image = decode_png(data, mode=ImageReadMode.UNCHANGED)
    return image.float() / 65535.0


def _read_tiff(path: PathLike) -> torch.Tensor:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        array = page.asarray()
        planar = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
        bits = page.bitspersample
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 3 and not planar:
        array = array.transpose(2, 0, 1)
    elif array.ndim != 3:
        raise ValueError(f"unsupported TIFF shape {array.shape}")
    if array.dtype == np.bool_:
        scale = 1.0
    elif np.issubdtype(array.dtype, np.integer):
        # Scale by the declared depth (a 12-bit TIFF tops out at 4095), not by the dtype.
        bits = min(bits, np.iinfo(array.dtype).bits) if bits else np.iinfo(array.dtype).bits
        scale = float(2 ** (bits - 1) - 1 if np.issubdtype(array.dtype, np.signedinteger)
                      else 2 ** bits - 1)
    else:
        scale = 1.0  # float TIFFs are taken to hold values in [0, 1] already
    return torch.from_numpy(np.ascontiguousarray(array).astype(np.float32)) / scale


# PIL mode -> (mode to convert to first, or None, and the value that means "full white").
_PIL_MODES = {
    "1": ("L", 255.0), "L": (None, 255.0), "LA": (None, 255.0), "RGB": (None, 255.0),
    "RGBA": (None, 255.0), "RGBX": ("RGB", 255.0), "CMYK": ("RGB", 255.0),
    "YCbCr": ("RGB", 255.0), "LAB": ("RGB", 255.0), "HSV": ("RGB", 255.0),
    "I;16": (None, 65535.0), "I;16L": (None, 65535.0), "I;16B": (None, 65535.0),
    "I;16N": (None, 65535.0),
    # Mode "I" comes from 16-bit grayscale PNG/PGM files, whose maximum is 65535.
    "I": (None, 65535.0), "F": (None, 1.0),
}


def _read_pil(path: PathLike) -> torch.Tensor:
    with Image.open(path) as img:
        img.load()  # decode now, so truncated files fail here and not later
        if img.mode in ("P", "PA"):
            has_alpha = img.mode == "PA" or "transparency" in img.info
            img = img.convert("RGBA" if has_alpha else "RGB")
        if img.mode not in _PIL_MODES:
            raise ValueError(f"unsupported PIL mode {img.mode}")
        convert_to, white = _PIL_MODES[img.mode]
        if convert_to is not None:
            img = img.convert(convert_to)
        array = np.asarray(img)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype == np.uint8:
        return torch.from_numpy(array.transpose(2, 0, 1).copy())
    return torch.from_numpy(array.astype(np.float32).transpose(2, 0, 1).copy()) / white


def to_unit_float(image: torch.Tensor) -> torch.Tensor:
    """float32 in [0, 1]: ``uint8`` divided by 255 (as torchvision's ToTensor), float as is."""
    return image.float() / 255.0 if image.dtype == torch.uint8 else image


# path -> decoded image, filled by read_image while --cache_images is on (set_image_cache).
_image_cache: Optional[Dict[str, torch.Tensor]] = None


def set_image_cache(enabled: bool) -> None:
    """Keep every image ``read_image`` decodes in memory (``--cache_images``; what is cached
    already stays), or stop and forget them all.

    Each read gives a copy of what a fresh read gives (8-bit images stay uint8). Fill the cache before DataLoader workers start (see
    ``data.preload_images``): forked workers then share it instead of each decoding again.
    """
    global _image_cache
    if not enabled:
        _image_cache = None
    elif _image_cache is None:
        _image_cache = {}


def read_image(path: PathLike) -> torch.Tensor:
    """Read ``path`` with its own channels (alpha included): uint8 for 8-bit files, float32
    in [0, 1] for higher bit depths and float data.

    Raises ``UnreadableImageError`` when the file cannot be decoded.
    """
    if _image_cache is not None:
        cached = _image_cache.get(str(path))
        if cached is None:
            cached = _image_cache[str(path)] = _read_uncached(path)
        return cached.clone()
    return _read_uncached(path)


def _read_uncached(path: PathLike) -> torch.Tensor:
    try:
        suffix = Path(path).suffix.lower()
        if suffix in TIFF_EXTENSIONS:
            image = _read_tiff(path)
        elif suffix == ".png" and _png_bit_depth(path) == 16:
            image = _read_png16(path)
        else:
            image = _read_pil(path)
    except FileNotFoundError as e:
        raise UnreadableImageError(path, "file not found") from e
    except DECODE_ERRORS as e:
        raise UnreadableImageError(path, str(e) or type(e).__name__) from e
    if image.shape[1] == 0 or image.shape[2] == 0:
        raise UnreadableImageError(path, "image has no pixels")
    return image


def convert_channels(image: torch.Tensor, nc: int, path: PathLike = "image") -> torch.Tensor:
    """Give a ``C x H x W`` image ``nc`` channels.

    1 channel: luminance of the first three channels (or the gray channel); for uint8
    images PIL's own ``convert("L")``, the reference's ``Grayscale(1)``. 3 channels: RGB, gray
    repeated, alpha dropped. Other counts: the first ``nc`` channels, or gray repeated. Gray
    images are those with one channel, or two (gray + alpha). The dtype is kept.
    """
    channels = image.shape[0]
    gray = channels <= 2
    if nc == 1:
        if gray:
            return image[:1]
        if image.dtype == torch.uint8:
            rgb = Image.fromarray(image[:3].permute(1, 2, 0).numpy(), "RGB")
            return torch.from_numpy(np.asarray(rgb.convert("L")).copy())[None]
        weights = torch.tensor(LUMA_WEIGHTS, dtype=image.dtype).view(3, 1, 1)
        return (image[:3] * weights).sum(dim=0, keepdim=True)
    if gray:
        return image[:1].repeat(nc, 1, 1)
    if channels < nc:
        raise UserError(f"{path} has {channels} channels but {nc} are needed "
                        f"(check --input_nc / --output_nc)")
    return image[:nc]


def load_image(path: PathLike, nc: int) -> torch.Tensor:
    """Read ``path`` as an ``nc x H x W`` tensor, uint8 or float32 as ``read_image`` (see
    ``convert_channels``)."""
    return convert_channels(read_image(path), nc, path)


def image_size(path: PathLike) -> Tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    try:
        if Path(path).suffix.lower() in TIFF_EXTENSIONS:
            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                return int(page.imagewidth), int(page.imagelength)
        with Image.open(path) as img:
            return img.size
    except DECODE_ERRORS as e:
        raise UnreadableImageError(path, str(e) or type(e).__name__) from e
