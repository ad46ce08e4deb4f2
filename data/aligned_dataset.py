"""Paired images stored side by side: ``<dataroot>/<phase>/*.jpg``, each file A|B.

The left half is A and the right half B (``--direction BtoA`` swaps them, channel counts
included). Both halves get the same crop and flip, so the pair stays aligned. With an odd
width the right half is one column wider, as in the reference, where a crop follows (it
gives both halves the same size); with ``scale_width`` or ``none`` it loses that column
instead, so that A and B keep the same size. A file narrower than 2 pixels is skipped as
unreadable.
"""

from __future__ import annotations

import argparse
import os
from typing import List, Tuple

from data.base_dataset import DATASETS, PREPROCESS_MODES, BaseDataset, item_generator, splits_hint
from data.image_folder import UnreadableImageError, convert_channels, image_size, make_dataset, read_image
from util.errors import UserError

LAYOUT = "<dataroot>/<phase>/ holding images with A and B side by side (A|B)"


@DATASETS.register("aligned")
class AlignedDataset(BaseDataset):
    """pix2pix pairs: one file per pair, A on the left and B on the right."""

    caches_resized_images = True

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.dir_AB, self.AB_paths = self.locate(opt)
        if opt.preprocess == "crop":
            for path in self.AB_paths:
                try:
                    w, h = image_size(path)
                except UnreadableImageError:
                    continue  # reported and skipped when loaded
                self.check_fits(path, (w // 2, h))

    def locate(self, opt: argparse.Namespace) -> Tuple[str, List[str]]:
        """(where the A|B files are, their sorted paths); the shard mode finds them in tar files."""
        folder = os.path.join(opt.dataroot, opt.phase)
        if not os.path.isdir(folder):
            unpaired = all(os.path.isdir(os.path.join(opt.dataroot, opt.phase + s)) for s in "AB")
            hint = (f" ({opt.dataroot} holds {opt.phase}A/ and {opt.phase}B/: unpaired data, for "
                    f"--dataset_mode unaligned)" if unpaired else "")
            raise UserError(f"no folder {folder} for --dataset_mode aligned; "
                            f"expected {LAYOUT}{hint or splits_hint(opt.dataroot, opt.phase)}")
        paths = make_dataset(folder, opt.max_dataset_size)
        if not paths:
            raise UserError(f"no images in {folder}; expected {LAYOUT}")
        return folder, paths

    def __getitem__(self, index: int) -> dict:
        path = self.AB_paths[index]
        try:
            A, B = self.prepared(path, lambda: self.read_pair(path))
        except UnreadableImageError as e:
            return self.skip(path, e.reason)
        params = self.params_for(A, item_generator(index))
        return {"A": self.transform(A, params), "B": self.transform(B, params),
                "A_paths": path, "B_paths": path}

    def read_pair(self, path: str) -> tuple:
        """(A, B) from one A|B file, with --direction and the channel counts applied."""
        AB = read_image(path)
        w = AB.shape[2]
        if w < 2:
            raise UnreadableImageError(path, f"width {w} cannot hold an A|B pair")
        half = w // 2
        _, crop = PREPROCESS_MODES[self.opt.preprocess]
        left, right = AB[:, :, :half], AB[:, :, half:] if crop else AB[:, :, half:2 * half]
        if self.opt.direction == "BtoA":
            left, right = right, left
        input_nc, output_nc = self.input_output_nc()
        self.check_fits(path, (half, AB.shape[1]))
        return convert_channels(left, input_nc, path), convert_channels(right, output_nc, path)

    def __len__(self) -> int:
        return len(self.AB_paths)

    def describe(self) -> str:
        return f"aligned A|B pairs from {self.dir_AB}"
