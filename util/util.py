"""Image and file helpers that take plain arguments (no options object)."""

from __future__ import annotations

import random
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Deque, Optional, Sequence

import numpy as np
import torch

from util.errors import UserError


def seed_everything(seed: Optional[int]) -> None:
    """Seed Python's, numpy's and torch's global generators (nothing for ``None``)."""
    if seed is None:
        return
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def tensor2im(image: torch.Tensor, imtype=np.uint8, channels: Optional[Sequence[int]] = None) -> np.ndarray:
    """Turn the first image of a (B, C, H, W) tensor in [-1, 1] into an (H, W, 3) array.

    One-channel images are repeated to three channels, so every visual can be shown and
    saved the same way; beyond three channels the first three are shown, or the 1-based
    ``channels`` (e.g. (4, 3, 2) for a false-colour view of bands 4, 3, 2). A volume
    (B, C, D, H, W) shows the middle slice of each axis side by side (``middle_slices``).
    """
    if not isinstance(image, torch.Tensor):
        return np.asarray(image)
    array = image.detach()[0].float().cpu().clamp(-1.0, 1.0).numpy()
    if array.ndim == 4:
        array = middle_slices(array)
    if channels:
        if max(channels) > array.shape[0] or min(channels) < 1:
            raise UserError(f"--display_channels {','.join(map(str, channels))}: the image has "
                            f"{array.shape[0]} channel(s), numbered from 1")
        array = array[[c - 1 for c in channels]]
    if array.shape[0] in (1, 2):
        array = np.repeat(array[:1], 3, axis=0)
    elif array.shape[0] > 3:
        array = array[:3]
    array = (np.transpose(array, (1, 2, 0)) + 1.0) / 2.0
    if imtype == np.uint8:
        return np.round(array * 255.0).astype(np.uint8)
    return array.astype(imtype)


def middle_slices(volume: np.ndarray, gap: int = 2) -> np.ndarray:
    """A (C, D, H, W) volume -> (C, h, w) image: its middle slices across D, H and W side by
    side (H x W, D x W, D x H), ``gap`` columns of -1 (black) between them."""
    _, d, h, w = volume.shape
    views = [volume[:, d // 2], volume[:, :, h // 2], volume[:, :, :, w // 2]]
    out = np.full((volume.shape[0], max(v.shape[1] for v in views),
                   sum(v.shape[2] for v in views) + gap * 2), -1.0, dtype=volume.dtype)
    x = 0
    for view in views:
        out[:, :view.shape[1], x:x + view.shape[2]] = view
        x += view.shape[2] + gap
    return out


class ImageWriter:
    """Write images on a background thread while the caller computes the next ones.

    PNG encoding releases the GIL, so it overlaps the next forward pass (test.py writes three
    PNGs per image: ~15 ms at 256x256, a quarter of a bf16 unet_256 forward on a CPU).
    At most ``max_pending`` writes wait at a time, so memory stays bounded; a failed write
    raises its error in the caller at the next ``save`` or at ``close``. Use as a context
    manager: leaving it waits for every file.
    """

    def __init__(self, max_pending: int = 6):
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-writer")
        self._pending: Deque[Future] = deque()

    def save(self, write: Callable, *args: Any) -> None:
        """Run ``write(*args)`` (data/codec.py's ``write_preview`` or ``write_array``) on the thread."""
        self._pending.append(self._pool.submit(write, *args))
        while self._pending and (self._pending[0].done() or len(self._pending) > self.max_pending):
            self._pending.popleft().result()

    def close(self) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=True)

    def __enter__(self) -> ImageWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

