"""The one image codec: every image and volume file pix2cycle reads or writes goes through here.

``read_array`` gives a ``C x H x W`` image and ``read_volume`` a ``C x D x H x W`` volume,
both in the file's own dtype (uint8, uint16, int16, float32, ...), unscaled: the photo
datasets scale them (``data.image_folder.read_image``), the scientific ones map them with
their intensity window (``data.intensity``). Files inside WebDataset shards
(``data.shards``) are decoded here too, from their bytes in the tar. ``write_array`` and ``write_volume`` store
results the same ways; ``image_format`` is the one output policy:

* a ``.npy`` input gives ``.npy`` results, a TIFF input TIFF results (the containers of
  scientific data stay what they were);
* otherwise 8- and 16-bit results of 1 to 4 channels (gray, gray + alpha, RGB, RGBA) are
  PNGs (16-bit PNGs written here: PIL writes only gray ones);
* anything else (more than 4 channels, floats, signed types) is TIFF.

test.py, translate.py and the Translator's file writes follow it; translate.py alone keeps an
8-bit result in its input's format where that format holds it (``pix2cycle.io``).

Axis rules:

* TIFF: the series' axes as tifffile reports them. For images, every axis other than Y
  and X (pages, samples, channels) becomes a channel, in file order: a 5-page or a
  5-sample TIFF is a 5-channel image. For volumes, Z (or the page axis) is the depth and
  samples/channels (S, C) are the channels.
* ``.npy``: a 2-D array is one channel; a 3-D array is channels-first (``C x H x W``)
  unless its last axis is small (<= 16) and its first is not, then it is channels-last
  (``H x W x C``). Volumes: 3-D is ``D x H x W``; 4-D follows the same rule between
  ``C x D x H x W`` and ``D x H x W x C``.
* NIfTI (``.nii``, ``.nii.gz``): the array in the file's axis order (x, y, z), a fourth
  axis as channels. Results are written with the input's affine and header.
* PNG, JPEG and other PIL formats: channels as decoded (16-bit PNGs stay 16-bit).
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from util.errors import UserError

PathLike = Union[str, Path]

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
TIFF_EXTENSIONS = (".tif", ".tiff")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

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


def _source(path: PathLike):
    """What the decoders open: the path itself, or the bytes of a file stored inside an archive
    (a WebDataset shard's ``data.shards.ShardMember``, which reads them and is named like a file,
    so the suffix rules below apply to it unchanged)."""
    member_bytes = getattr(path, "member_bytes", None)
    return path if member_bytes is None else io.BytesIO(member_bytes())


def _read_bytes(path: PathLike) -> bytes:
    member_bytes = getattr(path, "member_bytes", None)
    return Path(path).read_bytes() if member_bytes is None else member_bytes()


def png_bit_depth(path: PathLike) -> Optional[int]:
    """Bit depth from the PNG header (IHDR comes first, bit depth is byte 24); None when the
    file is not a PNG, whatever its suffix."""
    source = _source(path)
    with (source if isinstance(source, io.BytesIO) else open(source, "rb")) as f:
        head = f.read(25)
    return head[24] if len(head) == 25 and head[:8] == PNG_SIGNATURE else None


def bit_depth(path: PathLike) -> int:
    """Bits per sample of the image file at ``path`` (8 when it cannot be told)."""
    try:
        if suffix_of(path) in TIFF_EXTENSIONS:
            with tifffile.TiffFile(_source(path)) as tif:
                return int(tif.pages[0].bitspersample or 8)
        depth = png_bit_depth(path)
        if depth is not None:
            return depth
        with Image.open(_source(path)) as img:
            return 16 if img.mode.startswith("I") else 8
    except DECODE_ERRORS:
        return 8


def image_size(path: PathLike) -> Tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    try:
        if suffix_of(path) in TIFF_EXTENSIONS:
            with tifffile.TiffFile(_source(path)) as tif:
                page = tif.pages[0]
                return int(page.imagewidth), int(page.imagelength)
        with Image.open(_source(path)) as img:
            return img.size
    except DECODE_ERRORS as e:
        raise UnreadableImageError(path, str(e) or type(e).__name__) from e

NIFTI_SUFFIXES = (".nii", ".nii.gz")
IMAGE_ARRAY_EXTENSIONS = IMG_EXTENSIONS + (".npy",)
VOLUME_EXTENSIONS = NIFTI_SUFFIXES + (".npy",) + TIFF_EXTENSIONS
SMALL_AXIS = 16  # the largest axis the .npy rule takes for channels-last
_CHANNEL_AXES = "SC"


def suffix_of(path: PathLike) -> str:
    """The file's extension, lower case, ``.nii.gz`` counted as one."""
    name = str(path).lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def stem_of(path: PathLike) -> str:
    """The file name without its extension (``.nii.gz`` as one)."""
    name = Path(path).name
    return name[:len(name) - len(suffix_of(name))]


def _channels_first(array: np.ndarray, spatial: int) -> np.ndarray:
    """The .npy rule: ``spatial`` axes, plus an optional channel axis first or (small) last."""
    if array.ndim == spatial:
        return array[None]
    if array.ndim != spatial + 1:
        raise ValueError(f"expected {spatial} or {spatial + 1} axes, got shape {array.shape}")
    if array.shape[-1] <= SMALL_AXIS < array.shape[0]:
        return np.moveaxis(array, -1, 0)
    return array


def _read_tiff_series(path: PathLike) -> Tuple[np.ndarray, str, Optional[int]]:
    with tifffile.TiffFile(_source(path)) as tif:
        series = tif.series[0]
        array, axes = series.asarray(), series.axes
        bits = tif.pages[0].bitspersample
    return array, axes, bits


def _read_tiff_image(path: PathLike) -> Tuple[np.ndarray, Optional[int]]:
    array, axes, bits = _read_tiff_series(path)
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"TIFF axes {axes} have no Y and X")
    order = [i for i, a in enumerate(axes) if a not in "YX"] + [axes.index("Y"), axes.index("X")]
    array = array.transpose(order)
    return array.reshape((-1,) + array.shape[-2:]), bits


def _read_pil_array(path: PathLike) -> np.ndarray:
    with Image.open(_source(path)) as img:
        img.load()
        if img.mode in ("P", "PA"):
            img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
        elif img.mode == "1":
            img = img.convert("L")
        elif img.mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
            img = img.convert("RGB")
        array = np.asarray(img)
    if not array.dtype.isnative:  # "I;16B": big-endian samples
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype == np.int32 and array.min() >= 0 and array.max() <= 65535:
        array = array.astype(np.uint16)  # PIL's mode "I" of 16-bit gray files
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _read_png16(path: PathLike) -> np.ndarray:
    # PIL reads 16-bit RGB PNGs as 8-bit RGB, so they are decoded with torchvision when it can
    # (its image decoders are deprecated from 0.29 on; without them PIL is the fallback).
    import torch
    try:
        from torchvision.io import ImageReadMode, decode_png
    except ImportError:
        return _read_pil_array(path)

    data = torch.frombuffer(bytearray(_read_bytes(path)), dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        image = decode_png(data, mode=ImageReadMode.UNCHANGED)
    return image.to(torch.int32).numpy().astype(np.uint16)


def _nibabel():
    try:
        import nibabel
    except ImportError:
        raise UserError("NIfTI volumes need nibabel: pip install nibabel") from None
    return nibabel


def _decode(path: PathLike, read):
    try:
        return read()
    except FileNotFoundError as e:
        raise UnreadableImageError(path, "file not found") from e
    except DECODE_ERRORS as e:
        raise UnreadableImageError(path, str(e) or type(e).__name__) from e


def read_array(path: PathLike) -> Tuple[np.ndarray, Optional[int]]:
    """(``C x H x W`` array in the file's dtype, significant bits when the file declares
    them, else None). Raises ``UnreadableImageError`` when it cannot be decoded."""
    def read():
        suffix = suffix_of(path)
        if suffix == ".npy":
            return _channels_first(np.load(_source(path), allow_pickle=False), 2), None
        if suffix in TIFF_EXTENSIONS:
            return _read_tiff_image(path)
        if suffix == ".png" and png_bit_depth(path) == 16:
            return _read_png16(path), None
        return _read_pil_array(path), None

    array, bits = _decode(path, read)
    if array.ndim != 3 or 0 in array.shape:
        raise UnreadableImageError(path, f"image has no pixels (shape {array.shape})")
    array = np.ascontiguousarray(array)
    return (array if array.flags.writeable else array.copy()), bits  # PIL's buffers are read-only


def read_volume(path: PathLike) -> np.ndarray:
    """A ``C x D x H x W`` array in the file's dtype (see the module docstring for axes)."""
    def read():
        suffix = suffix_of(path)
        if suffix in NIFTI_SUFFIXES:
            array = np.asanyarray(_nibabel().load(str(path)).dataobj)
            if array.ndim == 4:
                array = np.moveaxis(array, -1, 0)
            return array[None] if array.ndim == 3 else array
        if suffix == ".npy":
            return _channels_first(np.load(path, allow_pickle=False), 3)
        array, axes, _ = _read_tiff_series(path)
        channel = [i for i, a in enumerate(axes) if a in _CHANNEL_AXES]
        if channel and array.ndim == 4:
            return np.moveaxis(array, channel[0], 0)
        return array[None] if array.ndim == 3 else array

    array = _decode(path, read)
    if array.ndim != 4 or 0 in array.shape:
        raise UnreadableImageError(path, f"not a volume: shape {array.shape} (expected D x H x W, "
                                         f"with an optional channel axis)")
    return np.ascontiguousarray(array)


def image_format(source: PathLike, dtype: np.dtype, channels: int) -> str:
    """The extension a 2-D result of ``dtype`` and ``channels`` is saved with, for an input
    file ``source``: the one policy of every door (see the module docstring)."""
    suffix = suffix_of(source)
    if suffix == ".npy":
        return ".npy"
    if suffix in TIFF_EXTENSIONS:
        return suffix
    if np.dtype(dtype) in (np.uint8, np.uint16) and channels in PNG_COLOR_TYPES:
        return ".png"
    return ".tif"


# Channels -> PNG colour type: gray, gray + alpha, RGB, RGBA.
PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_png16(array: np.ndarray) -> bytes:
    """An H x W x C (C = 1..4) uint16 array as the bytes of a 16-bit PNG (PIL writes only
    gray ones, so they are encoded here: a few lines of zlib)."""
    height, width, channels = array.shape
    rows = array.astype(">u2").reshape(height, width * channels).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)  # filter type 0 per row
    header = struct.pack(">IIBBBBB", width, height, 16, PNG_COLOR_TYPES[channels], 0, 0, 0)
    return (PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
            + _png_chunk(b"IEND", b""))


def volume_format(source: PathLike) -> str:
    """Volumes are saved in their input's format."""
    suffix = suffix_of(source)
    return suffix if suffix in VOLUME_EXTENSIONS else ".npy"


JPEG_QUALITY = 95
# 8-bit formats PIL writes, suffix -> the channel counts they hold; options per format.
PIL_FORMATS = {".jpg": (1, 3), ".jpeg": (1, 3), ".bmp": (1, 3), ".webp": (3, 4), ".ppm": (3,), ".pgm": (1,)}
# PNG at zlib level 1: the same pixels, files ~15% larger, written 3-4x faster than PIL's default
# level 6 (test.py writes three PNGs per image; at level 6 that took a third of the time of a
# bf16 unet_256 forward pass on a CPU).
_SAVE_OPTIONS = {".jpg": {"quality": JPEG_QUALITY}, ".jpeg": {"quality": JPEG_QUALITY}, ".webp": {"lossless": True},
                 ".png": {"compress_level": 1}}


def holds(suffix: str, dtype: np.dtype, channels: int) -> bool:
    """Whether a file of ``suffix`` stores ``channels`` channels of ``dtype`` as they are."""
    suffix, dtype = suffix.lower(), np.dtype(dtype)
    if suffix in (".npy",) + TIFF_EXTENSIONS:
        return True
    if suffix == ".png":
        return dtype in (np.uint8, np.uint16) and channels in PNG_COLOR_TYPES
    return dtype == np.uint8 and channels in PIL_FORMATS.get(suffix, ())


def write_array(array: np.ndarray, path: PathLike) -> None:
    """Save a ``C x H x W`` array by ``path``'s extension (which must ``hold`` it): 8/16-bit
    PNG of 1-4 channels, JPEG (quality ``JPEG_QUALITY``), lossless WebP, BMP, PPM/PGM,
    TIFF of any channels and type, ``.npy``."""
    suffix = suffix_of(path)
    if not holds(suffix, array.dtype, array.shape[0]):
        raise ValueError(f"a {suffix} file cannot hold {array.shape[0]} channels of {array.dtype}")
    if suffix == ".npy":
        np.save(path, array)
    elif suffix == ".png" and array.dtype == np.uint16:
        Path(path).write_bytes(encode_png16(array.transpose(1, 2, 0)))
    elif suffix not in TIFF_EXTENSIONS:
        image = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
        image.save(path, **_SAVE_OPTIONS.get(suffix, {}))
    elif array.shape[0] == 1:
        tifffile.imwrite(path, array[0], photometric="minisblack")
    elif array.shape[0] == 3 and array.dtype in (np.uint8, np.uint16):  # a colour image to viewers
        tifffile.imwrite(path, array.transpose(1, 2, 0), photometric="rgb")
    else:
        tifffile.imwrite(path, array, photometric="minisblack", metadata={"axes": "CYX"})


def write_preview(image: np.ndarray, path: PathLike, aspect_ratio: float = 1.0) -> None:
    """Save an H x W x 3 uint8 display image (a gallery's, ``util.util.tensor2im``'s) as a PNG;
    ``aspect_ratio`` > 1 widens it, < 1 heightens it."""
    if aspect_ratio != 1.0:
        h, w = image.shape[:2]
        size = (int(w * aspect_ratio), h) if aspect_ratio > 1.0 else (w, int(h / aspect_ratio))
        image = np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))
    write_array(np.ascontiguousarray(image.transpose(2, 0, 1)), path)


def write_volume(array: np.ndarray, path: PathLike, source: Optional[PathLike] = None,
                 affine: Optional[np.ndarray] = None) -> None:
    """Save a ``C x D x H x W`` array by ``path``'s extension; a NIfTI ``source`` lends its
    affine and header (the data type is the array's), else ``affine`` (default identity)."""
    suffix = suffix_of(path)
    data = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    if suffix in NIFTI_SUFFIXES:
        nibabel = _nibabel()
        if source is not None and suffix_of(source) in NIFTI_SUFFIXES:
            src = nibabel.load(str(source))
            header = src.header.copy()
            header.set_data_dtype(array.dtype)
            header.set_slope_inter(1.0, 0.0)  # the values written are the values meant
            image = nibabel.Nifti1Image(data, src.affine, header=header)
        else:
            image = nibabel.Nifti1Image(data, np.eye(4) if affine is None else affine)
        nibabel.save(image, str(path))
    elif suffix == ".npy":
        np.save(path, array[0] if array.shape[0] == 1 else array)
    elif array.shape[0] == 1:
        tifffile.imwrite(path, array[0], photometric="minisblack", metadata={"axes": "ZYX"})
    else:
        tifffile.imwrite(path, np.moveaxis(array, 0, 1), photometric="minisblack", metadata={"axes": "ZCYX"})
