"""Paired volumes: ``<dataroot>/<phase>A/x.nii.gz`` with ``<dataroot>/<phase>B/x.nii.gz``.

Volumes pair by name without extension, as in ``--dataset_mode paired``: NIfTI (``.nii``,
``.nii.gz``), ``.npy`` and multi-page TIFF stacks (axis rules in ``data.codec``). Both
volumes of a pair must have the same shape. Values are mapped with ``--intensity``.

Training draws ``--patches_per_volume`` random patches of ``--patch_size D,H,W`` from each
volume per epoch, the same position in A and B, flipped along each axis at random unless
``--no_flip``. A pair's patches come one after another in the shuffled order (the sampler's
``group``) and the last decoded pair is kept, so each pair is decoded once per epoch (once
per DataLoader worker that draws its patches, at most ``--patches_per_volume`` times), and
once in all under ``--cache_images``. Testing gives whole volumes; the model translates them with a sliding
window (``models.networks.volumetric.sliding_window``).
"""

from __future__ import annotations

import argparse
from typing import List, Optional, Tuple

import torch

from data.base_dataset import DATASETS, BaseDataset, item_generator
from data.codec import VOLUME_EXTENSIONS, read_volume
from data.image_folder import UnreadableImageError
from data.intensity import Window, add_intensity_options, dataset_windows
from data.paired_dataset import INTENSITY_KEYS, check_channels, folders_and_pairs, side_arrays
from util.errors import UserError


def parse_patch_size(text: str) -> Tuple[int, int, int]:
    """``"16"`` or ``"16,32,32"`` -> (D, H, W)."""
    try:
        sizes = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        sizes = ()
    if len(sizes) == 1:
        sizes = sizes * 3
    if len(sizes) != 3 or min(sizes) < 1:
        raise UserError(f"--patch_size '{text}' must be D,H,W (e.g. 32,64,64) or one size for all three")
    return sizes


@DATASETS.register("volume")
class VolumeDataset(BaseDataset):
    """Paired 3-D volumes; random patches for training, whole volumes for testing."""

    # Options test.py takes from the training run: the mapping and the sliding window's size.
    architecture_keys = INTENSITY_KEYS + ("patch_size",)
    # --cache_images keeps each pair's decoded, mapped volumes (volumes are never resized), so a
    # patch is only its crop and flip.
    caches_resized_images = True

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        add_intensity_options(parser)
        parser.add_argument("--patch_size", default="32,32,32",
                            help="D,H,W of the training patches and of the test-time sliding window (multiples "
                                 "of the generator's size, e.g. 16 for unet_16)")
        parser.add_argument("--patches_per_volume", type=int, default=4,
                            help="training: random patches drawn from each volume per epoch")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.dir_A, self.dir_B, self.pairs = folders_and_pairs(opt, VOLUME_EXTENSIONS)
        self.patch = parse_patch_size(opt.patch_size)
        self.repeats = self.sample_group = opt.patches_per_volume if opt.isTrain else 1
        self._last: Optional[Tuple[int, tuple]] = None  # (pair index, its decoded pair): patches in a row
        self.sample_unit = "patches" if opt.isTrain else "volumes"
        if self.repeats < 1:
            raise UserError(f"--patches_per_volume must be at least 1, not {self.repeats}")
        self.windows: List[Window] = dataset_windows(
            opt, lambda side: side_arrays(opt, self.pairs, side, lambda path: (read_volume(path), None)))

    def __len__(self) -> int:
        return len(self.pairs) * self.repeats

    def read_pair(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, str, str]:
        """(A, B) of pair ``index`` in [0, 1], channels checked, shapes equal (kept under ``--cache_images``)."""
        if self._prepared is not None and index in self._prepared:
            return self._prepared[index]
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        path_A, path_B = self.pairs[index]
        A, B = read_volume(path_A), read_volume(path_B)
        check_channels(path_A, A, self.opt.input_nc, "--input_nc")
        check_channels(path_B, B, self.opt.output_nc, "--output_nc")
        if A.shape[1:] != B.shape[1:]:
            raise UserError(f"{path_A} has shape {'x'.join(map(str, A.shape[1:]))} but {path_B} has "
                            f"{'x'.join(map(str, B.shape[1:]))}; paired volumes must have one shape")
        pair = self.windows[0].to_unit(A), self.windows[1].to_unit(B), path_A, path_B
        if self._prepared is not None:
            self._prepared[index] = pair
        self._last = index, pair
        return pair

    def __getitem__(self, index: int) -> dict:
        pair = int(index) // self.repeats
        try:
            A, B, path_A, path_B = self.read_pair(pair)
        except UnreadableImageError as e:
            return self.skip(e.path, e.reason)
        if self.opt.isTrain:
            A, B = self.random_patch(A, B, path_A, item_generator(index))
        return {"A": A * 2.0 - 1.0, "B": B * 2.0 - 1.0, "A_paths": path_A, "B_paths": path_B}

    def random_patch(self, A: torch.Tensor, B: torch.Tensor, path: str, generator) -> Tuple[torch.Tensor, torch.Tensor]:
        shape = A.shape[1:]
        if any(s < p for s, p in zip(shape, self.patch)):
            raise UserError(f"{path} has shape {'x'.join(map(str, shape))}, smaller than --patch_size "
                            f"{','.join(map(str, self.patch))}; use a smaller patch")
        corner = [int(torch.randint(0, s - p + 1, (1,), generator=generator)) for s, p in zip(shape, self.patch)]
        box = (slice(None),) + tuple(slice(c, c + p) for c, p in zip(corner, self.patch))
        A, B = A[box], B[box]
        if not self.opt.no_flip:
            axes = [axis + 1 for axis in range(3) if bool(torch.rand(1, generator=generator) < 0.5)]
            if axes:
                A, B = A.flip(axes), B.flip(axes)
        return A.contiguous(), B.contiguous()

    def describe(self) -> str:
        return f"paired volumes from {self.dir_A} and {self.dir_B}"
