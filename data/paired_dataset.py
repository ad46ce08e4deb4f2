"""Pairs in two folders: ``<dataroot>/<phase>A/x.ext`` with ``<dataroot>/<phase>B/x.ext``.

Files pair by name without extension (``x.tif`` may pair with ``x.npy``), so each side
can hold any number of channels and any bit depth (multi-channel and multi-page TIFF,
``.npy``, 16-bit PNG, JPEG; axis rules in ``data.codec``). A file without a partner is
an error that names it. Each file must have ``--input_nc`` (A) or ``--output_nc`` (B)
channels. Values reach the networks through ``--intensity`` (``data.intensity``), whose
windows test.py reuses and inverts when it saves results in the data's own type.

With ``--intensity bitdepth`` (the default), 8-bit files take the same path as in the
other modes (PIL's bicubic resize on the bytes); other data is resized as floats.
test.py takes whole images by default (``--preprocess none``). ``--cache_images`` has no
effect in this mode.
"""

from __future__ import annotations

import argparse
import os
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

from data.base_dataset import DATASETS, BaseDataset, item_generator
from data.codec import IMAGE_ARRAY_EXTENSIONS, read_array, stem_of
from data.image_folder import UnreadableImageError
from data.intensity import Window, add_intensity_options, dataset_windows, intensity_params
from util.errors import UserError

LAYOUT = "<dataroot>/<phase>A/x.ext and <dataroot>/<phase>B/x.ext, paired by file name"
INTENSITY_KEYS = ("intensity", "intensity_range", "intensity_percentiles", "intensity_windows")


def list_files(folder: str, extensions: Tuple[str, ...]) -> Dict[str, str]:
    """{relative path without extension: path} of the files under ``folder`` (recursive)."""
    if not os.path.isdir(folder):
        raise UserError(f"no folder {folder}; expected {LAYOUT}")
    files = {}
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(names):
            if name.lower().endswith(extensions):
                path = os.path.join(root, name)
                key = os.path.join(os.path.relpath(root, folder), stem_of(name))
                if key in files:
                    raise UserError(f"{files[key]} and {path} have the same name; pairs are matched by "
                                    f"name without extension, so keep one")
                files[key] = path
    return files


def pair_files(dir_A: str, dir_B: str, extensions: Tuple[str, ...],
               max_size: float = float("inf")) -> List[Tuple[str, str]]:
    """Sorted (A path, B path) pairs; a file without a partner is a UserError naming it."""
    return pair_listed(list_files(dir_A, extensions), list_files(dir_B, extensions), dir_A, dir_B, max_size)


def pair_listed(files_A: Dict[str, str], files_B: Dict[str, str], dir_A: str, dir_B: str,
                max_size: float = float("inf")) -> List[Tuple[str, str]]:
    """Sorted (A, B) pairs of two {name: file} listings (``list_files``'s, or a shard set's)."""
    for mine, theirs, other in ((files_A, files_B, dir_B), (files_B, files_A, dir_A)):
        lonely = sorted(k for k in mine if k not in theirs)
        if lonely:
            more = f" (and {len(lonely) - 1} more)" if len(lonely) > 1 else ""
            raise UserError(f"{mine[lonely[0]]} has no partner in {other}{more}: files pair by name "
                            f"without extension")
    if not files_A:
        raise UserError(f"no files in {dir_A}; expected {LAYOUT}")
    pairs = [(files_A[k], files_B[k]) for k in sorted(files_A)]
    return pairs[:int(max_size)] if max_size < len(pairs) else pairs


def check_channels(path: str, array: np.ndarray, nc: int, flag: str) -> None:
    if array.shape[0] != nc:
        raise UserError(f"{path} has {array.shape[0]} channel(s) but {flag} is {nc}; set {flag} {array.shape[0]}")


def folders_and_pairs(opt: argparse.Namespace, extensions: Tuple[str, ...]) -> Tuple[str, str, List[Tuple[str, str]]]:
    """(folder of A, folder of B, pairs) of ``<phase>A``/``<phase>B``, --direction applied.
    The intensity flags are checked first: a mistake there is reported before any file is read."""
    intensity_params(opt)
    dirs = [os.path.join(opt.dataroot, opt.phase + side) for side in "AB"]
    if opt.direction == "BtoA":
        dirs.reverse()
    return dirs[0], dirs[1], pair_files(dirs[0], dirs[1], extensions, opt.max_dataset_size)


def side_arrays(opt: argparse.Namespace, pairs: List[Tuple[str, str]], side: int,
                read: Callable[[str], Tuple[np.ndarray, Optional[int]]]) -> Iterator[Tuple[np.ndarray, Optional[int]]]:
    """(array, bits) of every readable file of ``side`` (0: A, 1: B), channels checked."""
    nc, flag = (opt.input_nc, "--input_nc") if side == 0 else (opt.output_nc, "--output_nc")
    for pair in pairs:
        try:
            array, bits = read(pair[side])
        except UnreadableImageError:
            continue  # skipped with a warning when the pair is loaded
        check_channels(pair[side], array, nc, flag)
        yield array, bits


@DATASETS.register("paired")
class PairedDataset(BaseDataset):
    """Paired data of any channel count and bit depth, in ``<phase>A/`` and ``<phase>B/``."""

    # Options test.py takes from the training run (the intensity mapping).
    architecture_keys = INTENSITY_KEYS

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        add_intensity_options(parser)
        if not is_train:
            # Whole images at test time (sides rounded to the generator's multiple), not resized to crop_size.
            parser.set_defaults(preprocess="none")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.dir_A, self.dir_B, self.pairs = self.locate(opt)
        self.windows: List[Window] = dataset_windows(opt, lambda side: side_arrays(opt, self.pairs, side, read_array))

    def locate(self, opt: argparse.Namespace) -> Tuple[str, str, List[Tuple[str, str]]]:
        """(where A's files are, B's, the sorted pairs); the shard mode finds them in tar files."""
        return folders_and_pairs(opt, IMAGE_ARRAY_EXTENSIONS)

    def to_network_range(self, array: np.ndarray, window: Window) -> torch.Tensor:
        """uint8 for 8-bit data under ``bitdepth`` (the exact 8-bit path), else [0, 1] floats."""
        if window.mode == "bitdepth" and array.dtype == np.uint8 and window.hi == [255.0] * len(window.hi):
            return torch.from_numpy(array)
        return window.to_unit(array)

    def __getitem__(self, index: int) -> dict:
        path_A, path_B = self.pairs[index]
        try:
            array_A, _ = read_array(path_A)
            array_B, _ = read_array(path_B)
        except UnreadableImageError as e:
            return self.skip(e.path, e.reason)
        check_channels(path_A, array_A, self.opt.input_nc, "--input_nc")
        check_channels(path_B, array_B, self.opt.output_nc, "--output_nc")
        if array_A.shape[1:] != array_B.shape[1:]:
            raise UserError(f"{path_A} is {array_A.shape[2]}x{array_A.shape[1]} but {path_B} is "
                            f"{array_B.shape[2]}x{array_B.shape[1]}; paired files must have one size")
        A = self.to_network_range(array_A, self.windows[0])
        B = self.to_network_range(array_B, self.windows[1])
        self.check_fits(path_A, (A.shape[2], A.shape[1]))
        params = self.params_for(A, item_generator(index))
        return {"A": self.transform(A, params), "B": self.transform(B, params),
                "A_paths": path_A, "B_paths": path_B, "paired": True}

    def __len__(self) -> int:
        return len(self.pairs)

    def describe(self) -> str:
        return f"paired files from {self.dir_A} and {self.dir_B}"
