"""Saving test results in the data's own type, with a preview PNG for the gallery.

For the scientific dataset modes (paired, volume), each visual is mapped back through its
side's intensity window (``real_A`` through A's, ``fake_B`` and ``real_B`` through B's)
and stored in the data's type, in the format ``data.codec.image_format`` gives (the one
translate.py uses too): 8-bit gray or RGB as PNG, 16-bit gray or RGB as 16-bit PNG (TIFF
for TIFF inputs), other types and channel counts as TIFF, ``.npy`` inputs as ``.npy``;
volumes in their input's format (NIfTI with its affine and header). ``--save_dtype`` picks another type.
The gallery shows a PNG preview (the first three channels, or ``--display_channels``; the
middle slice of each axis for volumes) labelled with the window it shows.

Other dataset modes keep their 8-bit PNGs, unless ``--save_dtype`` or
``--display_channels`` is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from data.codec import image_format, volume_format, write_array, write_preview, write_volume
from data.intensity import Window
from util.errors import UserError
from util.registry import Registry
from util.util import ImageWriter, tensor2im

# --save_dtype -> the type results are stored in; None keeps the data's own.
SAVE_DTYPES = Registry("--save_dtype")
SAVE_DTYPES.add("auto", None)
for _dtype in ("uint8", "uint16", "float32"):
    SAVE_DTYPES.add(_dtype, _dtype)


def parse_channels(text: Optional[str]) -> Optional[Tuple[int, ...]]:
    """``"3,2,1"`` -> (3, 2, 1): 1-based channels to preview; None shows the first three."""
    if not text:
        return None
    try:
        channels = tuple(int(v) for v in text.split(","))
    except ValueError:
        channels = ()
    if len(channels) not in (1, 3) or min(channels) < 1:
        raise UserError(f"--display_channels '{text}' must be one or three channel numbers from 1, e.g. 3,2,1")
    return channels


def _default_window(channels: int) -> Window:
    return Window([0.0] * channels, [255.0] * channels, "uint8")


class ResultSaver:
    """Writes one visual of one test input into ``image_dir``; returns its gallery cells."""

    def __init__(self, image_dir: Path, writer: ImageWriter, windows: Dict[str, Window], save_dtype: str = "auto",
                 display_channels: Optional[Sequence[int]] = None, aspect_ratio: float = 1.0) -> None:
        SAVE_DTYPES.get(save_dtype)  # an unknown type is refused, listing the known ones
        self.image_dir, self.writer, self.windows = Path(image_dir), writer, windows
        self.save_dtype, self.display_channels, self.aspect_ratio = save_dtype, display_channels, aspect_ratio

    def keeps_8bit_png(self, image: torch.Tensor) -> bool:
        """Whether results are plain 8-bit PNGs, as for the photo datasets."""
        return not self.windows and self.save_dtype == "auto" and not self.display_channels and image.dim() == 4

    def save(self, label: str, image: torch.Tensor, name: str, source: str) -> List[Tuple[str, str]]:
        """Save ``image`` (1 x C x H x W, or 1 x C x D x H x W, in [-1, 1]) of visual ``label``
        for the input file ``source``."""
        preview = f"{name}_{label}.png"
        if self.keeps_8bit_png(image):
            self.writer.save(write_preview, tensor2im(image), self.image_dir / preview, self.aspect_ratio)
            return [(label, f"images/{preview}")]
        side = label[-1] if label[-2:] in ("_A", "_B") else None
        window = self.windows.get(side) or _default_window(image.shape[1])
        array = window.from_signed(image[0], SAVE_DTYPES.get(self.save_dtype))
        volume = image.dim() == 5
        suffix = volume_format(source) if volume else image_format(source, array.dtype, array.shape[0])
        data_file = f"{name}_{label}{suffix}"
        if volume:
            write_volume(array, self.image_dir / data_file, source)
        else:
            self.writer.save(write_array, array, self.image_dir / data_file)
        cell = f"{label}: {window.describe()}, {array.dtype.name} {data_file}"
        if suffix == ".png" and not self.display_channels and array.shape[0] in (1, 3):
            return [(cell, f"images/{data_file}")]  # the data file is its own preview
        preview = f"{name}_{label}_preview.png"
        self.writer.save(write_preview, tensor2im(image, channels=self.display_channels), self.image_dir / preview,
                         self.aspect_ratio)
        return [(cell, f"images/{preview}")]
