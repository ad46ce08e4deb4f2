"""Intensity mapping: stored values <-> the networks' [-1, 1], and back when saving.

``--intensity`` picks a window ``[lo, hi]`` per channel that maps to [0, 1] (values outside
are clipped), then to [-1, 1]:

* ``bitdepth`` (default): the type's full range, as the other dataset modes do: 8-bit
  / 255, 16-bit / 65535 (or the bits a TIFF declares), signed integers their full range,
  floats taken as [0, 1].
* ``minmax``: each channel's minimum and maximum over the whole training set.
* ``percentile``: each channel's ``--intensity_percentiles lo,hi`` (default 0.5,99.5) over
  the whole training set, robust to hot pixels (microscopy, remote sensing).
* ``fixed``: ``--intensity_range lo,hi`` for every channel (a CT window such as -1000,1000).

Windows are computed once per dataset and per side (A and B may be different
modalities), stored in ``train_opt.json`` (``intensity_windows``) and reused by test.py,
which inverts them when saving results, so outputs come back in the data's own units.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from util.errors import UserError
from util.registry import Registry

SAMPLES_PER_FILE = 1 << 16  # values per channel and file that percentiles are taken from


@dataclass
class Window:
    """Per-channel ``lo`` and ``hi`` (stored units), the data's dtype and how it was chosen."""

    lo: List[float]
    hi: List[float]
    dtype: str
    mode: str = "bitdepth"
    params: Optional[List[float]] = None

    def _bounds(self, ndim: int) -> Tuple[np.ndarray, np.ndarray]:
        shape = (-1,) + (1,) * (ndim - 1)
        lo = np.asarray(self.lo, dtype=np.float64).reshape(shape)
        hi = np.asarray(self.hi, dtype=np.float64).reshape(shape)
        return lo, np.where(hi > lo, hi, lo + 1.0)

    def to_unit(self, array: np.ndarray) -> torch.Tensor:
        """A channels-first array (stored units) -> float32 tensor in [0, 1]."""
        lo, hi = self._bounds(array.ndim)
        unit = (array.astype(np.float64) - lo) / (hi - lo)
        return torch.from_numpy(np.clip(unit, 0.0, 1.0).astype(np.float32))

    def from_signed(self, tensor: torch.Tensor, dtype: Optional[str] = None) -> np.ndarray:
        """A channels-first tensor in [-1, 1] -> array in stored units and ``dtype`` (default
        the data's); integers are rounded and clipped to the type's range."""
        dtype = np.dtype(dtype or self.dtype)
        signed = tensor.detach().float().cpu().clamp(-1.0, 1.0).numpy().astype(np.float64)
        lo, hi = self._bounds(signed.ndim)
        if dtype != np.dtype(self.dtype) and self.mode == "bitdepth":
            # Another type asked for (--save_dtype): its own full range.
            lo, hi = type_range(dtype)
        values = lo + (signed + 1.0) / 2.0 * (hi - lo)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            values = np.clip(np.round(values), info.min, info.max)
        return values.astype(dtype)

    def describe(self) -> str:
        lo, hi = sorted(set(self.lo)), sorted(set(self.hi))
        text = (f"{lo[0]:g}..{hi[0]:g}" if len(lo) == len(hi) == 1
                else f"{min(self.lo):g}..{max(self.hi):g} per channel")
        return f"{self.mode} {text}"

    def to_json(self) -> dict:
        return asdict(self)


def type_range(dtype: np.dtype, bits: Optional[int] = None) -> Tuple[float, float]:
    """The ``bitdepth`` window of a type: [0, 2**bits - 1] for unsigned integers (bits
    from the file when it declares fewer), the full range for signed ones, [0, 1] otherwise."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_ or not np.issubdtype(dtype, np.integer):
        return 0.0, 1.0
    info = np.iinfo(dtype)
    if np.issubdtype(dtype, np.unsignedinteger):
        bits = min(bits, info.bits) if bits else info.bits
        return 0.0, float(2 ** bits - 1)
    return float(info.min), float(info.max)


def _sample(array: np.ndarray) -> np.ndarray:
    """Up to SAMPLES_PER_FILE evenly strided values of each channel: channels x n."""
    flat = array.reshape(array.shape[0], -1)
    step = max(1, flat.shape[1] // SAMPLES_PER_FILE)
    return flat[:, ::step].astype(np.float64)


def _minmax(samples: List[np.ndarray], params) -> Tuple[np.ndarray, np.ndarray]:
    return (np.min([s.min(axis=1) for s in samples], axis=0),
            np.max([s.max(axis=1) for s in samples], axis=0))


def _percentile(samples: List[np.ndarray], params) -> Tuple[np.ndarray, np.ndarray]:
    joined = np.concatenate(samples, axis=1)
    return np.percentile(joined, params[0], axis=1), np.percentile(joined, params[1], axis=1)


# --intensity mode -> how (lo, hi) per channel come from the sampled values; None for the
# modes that need no sample of the data (bitdepth: the type's range; fixed: --intensity_range).
INTENSITY_MODES = Registry("--intensity")
INTENSITY_MODES.add("bitdepth", None)
INTENSITY_MODES.add("minmax", _minmax)
INTENSITY_MODES.add("percentile", _percentile)
INTENSITY_MODES.add("fixed", None)


def compute_window(mode: str, arrays: Iterable[Tuple[np.ndarray, Optional[int]]],
                   params: Optional[Sequence[float]] = None) -> Window:
    """The window of ``mode`` over (channels-first array, declared bits) items, each read
    once. The dtype recorded is that of the first array."""
    statistic = INTENSITY_MODES.get(mode)
    samples, dtype, bits = [], None, None
    for array, file_bits in arrays:
        dtype = dtype or array.dtype.name
        bits = max(bits or 0, file_bits or 0) or None
        channels = array.shape[0]
        if statistic is None:
            break  # the first file tells the dtype and the channels
        samples.append(_sample(array))
    if dtype is None:
        raise UserError("no readable files to compute the intensity window from")
    if mode == "bitdepth":
        lo, hi = type_range(np.dtype(dtype), bits)
        return Window([lo] * channels, [hi] * channels, dtype, mode)
    if mode == "fixed":
        return Window([float(params[0])] * channels, [float(params[1])] * channels, dtype, mode, list(params))
    lo, hi = statistic(samples, params)
    return Window([float(v) for v in lo], [float(v) for v in hi], dtype, mode,
                  list(params) if params else None)


def _pair(text: Optional[str], flag: str) -> Optional[List[float]]:
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in str(text).split(","))
    except ValueError:
        raise UserError(f"--{flag} '{text}' must be two numbers, lo,hi (e.g. -1000,1000)") from None
    if not hi > lo:
        raise UserError(f"--{flag} {text}: hi must be greater than lo")
    return [lo, hi]


def add_intensity_options(parser: argparse.ArgumentParser) -> None:
    """The flags of the scientific dataset modes (paired, volume)."""
    g = parser.add_argument_group("intensity")
    g.add_argument("--intensity", default="bitdepth", choices=list(INTENSITY_MODES),
                   help="how stored values map to the networks' range (per channel, computed once over the "
                        "training set and reused by test.py): bitdepth = the type's range (8-bit /255, 16-bit "
                        "/65535), minmax, percentile (--intensity_percentiles), fixed (--intensity_range)")
    g.add_argument("--intensity_range", default=None, help="lo,hi for --intensity fixed, e.g. -1000,1000 (a CT window)")
    g.add_argument("--intensity_percentiles", default="0.5,99.5", help="lo,hi percentiles for --intensity percentile")
    # Filled in by the dataset and saved in train_opt.json, so that test.py maps alike.
    g.add_argument("--intensity_windows", default=None, type=json.loads, help=argparse.SUPPRESS)


def intensity_params(opt: argparse.Namespace) -> Optional[List[float]]:
    """The numbers ``--intensity`` needs (range or percentiles), checked."""
    if opt.intensity == "fixed":
        params = _pair(opt.intensity_range, "intensity_range")
        if params is None:
            raise UserError("--intensity fixed needs --intensity_range lo,hi (e.g. -1000,1000)")
        return params
    if opt.intensity == "percentile":
        params = _pair(opt.intensity_percentiles, "intensity_percentiles")
        if not 0.0 <= params[0] < params[1] <= 100.0:
            raise UserError(f"--intensity_percentiles {opt.intensity_percentiles} must lie in 0..100")
        return params
    return None


def dataset_windows(opt: argparse.Namespace, read_side: Callable[[int], Iterable]) -> List[Window]:
    """[window of A, window of B]: the training run's (saved in its options) when they were
    made the same way, else computed with ``read_side(i)``, an iterable of (array, bits) of
    side i. Stores the result in ``opt.intensity_windows`` for train_opt.json."""
    params = intensity_params(opt)
    saved = opt.intensity_windows or []
    windows = []
    for side in range(2):
        entry = saved[side] if len(saved) == 2 else None
        if entry and entry.get("mode") == opt.intensity and entry.get("params") == params:
            windows.append(Window(**entry))
        else:
            windows.append(compute_window(opt.intensity, read_side(side), params))
    opt.intensity_windows = [w.to_json() for w in windows]
    return windows


def windows_of(opt: argparse.Namespace) -> Dict[str, Window]:
    """{"A": Window, "B": Window} of a run whose dataset set them; {} for other modes."""
    saved = getattr(opt, "intensity_windows", None) or []
    return {side: Window(**entry) for side, entry in zip("AB", saved)}
