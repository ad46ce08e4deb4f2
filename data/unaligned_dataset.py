"""Unpaired images: ``<dataroot>/<phase>A/`` and ``<dataroot>/<phase>B/`` (CycleGAN).

Item ``i`` takes A image ``i mod len(A)`` and a B image chosen at random, or ``i mod
len(B)`` with ``--serial_batches``. The random choice is hashed from the sampler's
(seed, epoch, index), so ``--seed`` reproduces it, also across workers and resumes.
``--direction BtoA`` reads A from ``<phase>B`` and B from ``<phase>A``.
"""

from __future__ import annotations

import argparse
import os
from typing import List, Tuple

import torch

from data.base_dataset import DATASETS, BaseDataset, item_generator, splits_hint
from data.image_folder import UnreadableImageError, image_size, make_dataset
from util.errors import UserError

LAYOUT = "<dataroot>/<phase>A/ and <dataroot>/<phase>B/ holding the images of each domain"


@DATASETS.register("unaligned")
class UnalignedDataset(BaseDataset):
    """CycleGAN data: two folders of images that need not correspond."""

    caches_resized_images = True

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        (self.dir_A, self.A_paths), (self.dir_B, self.B_paths) = self.locate(opt)
        self.A_size, self.B_size = len(self.A_paths), len(self.B_paths)
        if opt.preprocess == "crop":
            for path in self.A_paths + self.B_paths:
                try:
                    self.check_fits(path, image_size(path))
                except UnreadableImageError:
                    continue  # reported and skipped when loaded

    def locate(self, opt: argparse.Namespace) -> List[Tuple[str, List[str]]]:
        """[(where A's images are, their sorted paths), (B's)], --direction applied; the shard
        mode finds them in tar files."""
        if not os.path.isdir(opt.dataroot):
            raise UserError(f"dataroot {opt.dataroot} does not exist; --dataset_mode "
                            f"unaligned expects {LAYOUT}")
        sides = ("A", "B") if opt.direction != "BtoA" else ("B", "A")
        located = []
        for folder in (os.path.join(opt.dataroot, opt.phase + s) for s in sides):
            if not os.path.isdir(folder):
                paired = os.path.isdir(os.path.join(opt.dataroot, opt.phase))
                hint = (f" ({opt.dataroot} holds {opt.phase}/: A|B pairs are read by --dataset_mode "
                        f"aligned)" if paired else "")
                raise UserError(f"no folder {folder} for --dataset_mode unaligned; "
                                f"expected {LAYOUT}{hint or splits_hint(opt.dataroot, opt.phase, True)}")
            paths = make_dataset(folder, opt.max_dataset_size)
            if not paths:
                raise UserError(f"no images in {folder}; expected {LAYOUT}")
            located.append((folder, paths))
        return located

    def __getitem__(self, index: int) -> dict:
        generator = item_generator(index)
        A_path = self.A_paths[index % self.A_size]
        if self.opt.serial_batches:
            index_B = index % self.B_size
        else:
            index_B = int(torch.randint(0, self.B_size, (1,), generator=generator))
        B_path = self.B_paths[index_B]
        input_nc, output_nc = self.input_output_nc()
        load_size = self.load_size_at(index)
        images = {}
        for key, path, nc in (("A", A_path, input_nc), ("B", B_path, output_nc)):
            try:
                img = self.image(path, nc, load_size)
            except UnreadableImageError as e:
                return self.skip(path, e.reason)
            # A and B are unrelated images, so each gets its own crop and flip.
            images[key] = self.transform_for(self.params_for(img, generator, load_size), load_size)(img)
        return {"A": images["A"], "B": images["B"], "A_paths": A_path, "B_paths": B_path}

    def image(self, path: str, nc: int, load_size=None):
        """One image with ``nc`` channels (resized and kept in memory with --cache_images)."""
        key = (path, nc) if load_size in (None, self.opt.load_size) else (path, nc, load_size)
        return self.prepared(key, lambda: (self.load_checked(path, nc),), load_size)[0]

    def preload(self) -> int:
        """Both domains in full (items pair A with a random B, so a pass over the items could miss some)."""
        input_nc, output_nc = self.input_output_nc()
        for paths, nc in ((self.A_paths, input_nc), (self.B_paths, output_nc)):
            for path in paths:
                try:
                    self.image(path, nc)
                except UnreadableImageError:
                    pass
        return len(self._prepared or {})

    def __len__(self) -> int:
        """The larger domain sets the epoch length, as in the reference."""
        return max(self.A_size, self.B_size)

    def describe(self) -> str:
        return f"A: {self.A_size} in {self.dir_A}, B: {self.B_size} in {self.dir_B}"
