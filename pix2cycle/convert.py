"""Conversions between what users hold and what generators take.

Each input kind has a reader (to a ``C x H x W`` float tensor in [-1, 1] with the
generator's input channels) and a writer that gives the result back as the same kind:

| input | range read as | result |
|---|---|---|
| ``PIL.Image`` | 8-bit: /255; 16-bit gray (``I;16``, ``I``): /65535; ``F``: [0, 1] | ``PIL.Image``: ``RGB`` or ``L`` (``I;16`` for 16-bit gray in and gray out) |
| ``numpy`` H x W [x C] | uint8 /255, uint16 /65535, float: [0, 1] | same dtype and layout (H x W when the input was and the output is gray) |
| ``torch`` C x H x W or N x C x H x W | [-1, 1], the networks' own range | same shape rank, dtype and device, in [-1, 1] |
| path (``str`` / ``Path``) | as ``data.image_folder.load_image`` | ``PIL.Image`` (8-bit) |
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Tuple

import numpy as np
import torch
from PIL import Image

from data.image_folder import UnreadableImageError, convert_channels, load_image, to_unit_float
from util.errors import UserError
from util.util import tensor2im

# A reader returns (C x H x W in [-1, 1], writer); the writer takes 1 x C' x H x W in [-1, 1].
Writer = Callable[[torch.Tensor], Any]

# PIL mode -> value of full white; other modes are converted to RGB(A) or L first.
_PIL_WHITE = {"L": 255.0, "LA": 255.0, "RGB": 255.0, "RGBA": 255.0, "I;16": 65535.0, "I;16L": 65535.0,
              "I;16B": 65535.0, "I;16N": 65535.0, "I": 65535.0, "F": 1.0}
_INTEGER_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def to_unit_hwc(result: torch.Tensor, dtype=np.float32) -> np.ndarray:
    """1 x C x H x W in [-1, 1] -> H x W x C in [0, 1] (``dtype`` float) or uint8 like test.py.

    Uses ``tensor2im`` (what test.py saves), keeping one channel for gray results.
    """
    channels = min(result.shape[1], 3)
    return tensor2im(result, imtype=dtype)[:, :, :channels]


def to_uint16_hwc(result: torch.Tensor) -> np.ndarray:
    """1 x C x H x W in [-1, 1] -> H x W x C uint16 over the full 16-bit range, every channel,
    rounded as test.py writes 16-bit results (``data.intensity.Window.from_signed``)."""
    signed = result.detach()[0].float().cpu().clamp(-1.0, 1.0).numpy().astype(np.float64)
    return np.round((signed.transpose(1, 2, 0) + 1.0) / 2.0 * 65535.0).astype(np.uint16)


def _unit_to_model(image: torch.Tensor, nc: int, what: str) -> torch.Tensor:
    return convert_channels(image.float(), nc, what) * 2.0 - 1.0


def _write_pil(result: torch.Tensor, sixteen_bit: bool = False) -> Image.Image:
    if sixteen_bit and result.shape[1] == 1:
        return Image.fromarray(to_uint16_hwc(result)[:, :, 0])
    array = to_unit_hwc(result, np.uint8)
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def _read_pil(image: Image.Image, nc: int) -> Tuple[torch.Tensor, Writer]:
    sixteen_bit = image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I")
    if image.mode not in _PIL_WHITE:
        has_alpha = "A" in image.mode or "transparency" in image.info
        image = image.convert("L" if image.mode == "1" else "RGBA" if has_alpha else "RGB")
    array = np.asarray(image).astype(np.float32) / _PIL_WHITE[image.mode]
    tensor = torch.from_numpy(array[:, :, None] if array.ndim == 2 else array).permute(2, 0, 1)
    return _unit_to_model(tensor, nc, "image"), functools.partial(_write_pil, sixteen_bit=sixteen_bit)


def _read_numpy(array: np.ndarray, nc: int) -> Tuple[torch.Tensor, Writer]:
    if array.ndim not in (2, 3):
        raise UserError(f"a numpy image must be H x W or H x W x C, not of shape {array.shape}")
    if array.dtype in _INTEGER_SCALE:
        scale = _INTEGER_SCALE[array.dtype]
    elif np.issubdtype(array.dtype, np.floating):
        scale = 1.0
    else:
        raise UserError(f"numpy images must be uint8, uint16 or float, not {array.dtype}")
    hwc = array[:, :, None] if array.ndim == 2 else array
    tensor = torch.from_numpy(np.ascontiguousarray(hwc).astype(np.float32) / scale).permute(2, 0, 1)
    dtype, flat = array.dtype, array.ndim == 2

    def write(result: torch.Tensor) -> np.ndarray:
        if dtype == np.uint8:
            out = to_unit_hwc(result, np.uint8)
        elif dtype == np.uint16:
            out = to_uint16_hwc(result)
        else:
            out = to_unit_hwc(result, dtype)
        return out[:, :, 0] if flat and out.shape[2] == 1 else out

    return _unit_to_model(tensor, nc, "array"), write


def _read_torch(tensor: torch.Tensor, nc: int) -> Tuple[torch.Tensor, Writer]:
    if tensor.dim() != 3:
        raise UserError(f"a tensor image must be C x H x W or N x C x H x W, not of shape {tuple(tensor.shape)}")
    if tensor.shape[0] != nc:
        raise UserError(f"the tensor has {tensor.shape[0]} channels; the generator takes {nc}")
    dtype, device = tensor.dtype, tensor.device
    return tensor.float(), lambda result: result[0].to(device=device, dtype=dtype)


def _read_path(path, nc: int) -> Tuple[torch.Tensor, Writer]:
    try:
        image = load_image(path, nc)
    except UnreadableImageError as e:
        raise UserError(f"cannot read image {e.path}: {e.reason}") from e
    return to_unit_float(image) * 2.0 - 1.0, _write_pil


def read_input(image: Any, nc: int) -> Tuple[torch.Tensor, Writer]:
    """(C x H x W tensor in [-1, 1] with ``nc`` channels, writer back to ``image``'s kind)."""
    for kind, reader in _READERS:
        if isinstance(image, kind):
            return reader(image, nc)
    raise UserError(f"cannot translate a {type(image).__name__}: give a PIL image, a numpy array, "
                    f"a torch tensor, a file path, or a list of these")


_READERS = ((Image.Image, _read_pil), (np.ndarray, _read_numpy), (torch.Tensor, _read_torch),
            ((str, Path), _read_path))
