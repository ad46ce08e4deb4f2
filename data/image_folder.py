"""Finding image files and reading them into tensors.

``make_dataset`` lists images under a folder (recursively, sorted); ``load_image`` reads one
into a ``C x H x W`` tensor with the requested number of channels. 8-bit files (JPEG, 8-bit
PNG, BMP, ...) give ``uint8`` tensors holding the bytes PIL decodes, so that the transforms
can resize them with PIL as the reference does (see ``data.base_dataset``). High bit depths
give float32 in ``[0, 1]`` and are kept: a 16-bit PNG or TIFF is divided by its real maximum
(65535, or ``2**bits - 1`` for TIFFs that declare fewer bits), never squeezed through 8 bits.
``to_unit_float`` turns either kind into float32 in ``[0, 1]``. Files that cannot be decoded
raise ``UnreadableImageError`` so a dataset can skip them. The decoding itself is
``data.codec.read_array``, the one decoder of every dataset and door; this module only
scales what it gives (``to_unit_range``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from PIL import Image

from data.codec import (
    DECODE_ERRORS,
    IMG_EXTENSIONS,
    TIFF_EXTENSIONS,
    UnreadableImageError,
    image_size,
    read_array,
)
from util.errors import UserError

PathLike = Union[str, Path]
# Where the decoding happens: data.codec; kept importable from here, where the datasets look.
__all__ = ["DECODE_ERRORS", "IMG_EXTENSIONS", "TIFF_EXTENSIONS", "UnreadableImageError", "image_size", "is_image_file",
           "make_dataset", "read_image", "load_image", "convert_channels", "to_unit_float", "set_image_cache",
           "to_unit_range"]

# ITU-R 601-2 luma, the weights PIL uses for convert("L"): float images get the same gray
# as 8-bit ones, which PIL converts itself (in fixed point, as the reference does).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


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


def to_unit_range(array: np.ndarray, bits: Optional[int] = None) -> torch.Tensor:
    """A decoded ``C x H x W`` array (``data.codec.read_array``) as the photo datasets take it:
    uint8 as it is (PIL resizes it as the reference does), other integers divided by their
    real maximum (``2**bits - 1`` for files that declare fewer bits than their type, e.g. a
    12-bit TIFF tops out at 4095; signed ones by ``2**(bits - 1) - 1``), floats as they are
    (taken to hold values in [0, 1] already), never squeezed through 8 bits."""
    if array.dtype == np.uint8:
        return torch.from_numpy(array)
    if np.issubdtype(array.dtype, np.integer):
        bits = min(bits, np.iinfo(array.dtype).bits) if bits else np.iinfo(array.dtype).bits
        signed = np.issubdtype(array.dtype, np.signedinteger)
        return torch.from_numpy(array.astype(np.float32)) / float(2 ** (bits - 1) - 1 if signed else 2 ** bits - 1)
    return torch.from_numpy(array.astype(np.float32))


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
    array, bits = read_array(path)
    return to_unit_range(array, bits)


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
