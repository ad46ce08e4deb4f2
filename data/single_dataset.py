"""Images of one domain, for running a generator one way (``--model test``).

Where the images are looked for, first match wins:

1. ``<dataroot>`` itself when it holds image files directly (the reference's behaviour;
   sub-folders are included);
2. ``<dataroot>/<phase>A`` (``<phase>B`` with ``--direction BtoA``), so a CycleGAN
   dataset root works as is;
3. ``<dataroot>/<phase>``, so an aligned dataset root works too (whole A|B files);
4. ``<dataroot>`` recursively.

Items are ``{"A": tensor, "A_paths": path}``; A has ``--input_nc`` channels.
"""

from __future__ import annotations

import argparse
import os
from typing import List, Tuple

from data.base_dataset import DATASETS, BaseDataset, item_generator
from data.image_folder import UnreadableImageError, image_size, is_image_file, make_dataset
from util.errors import UserError

LAYOUT = "images in <dataroot> (or in <dataroot>/<phase>A or <dataroot>/<phase>)"


def find_single_folder(dataroot: str, phase: str, direction: str) -> Tuple[str, List[str]]:
    """The folder ``SingleDataset`` reads and its images, following the rules above."""
    top_level = [f for f in os.listdir(dataroot)
                 if is_image_file(f) and os.path.isfile(os.path.join(dataroot, f))]
    if top_level:
        return dataroot, make_dataset(dataroot)
    side = "B" if direction == "BtoA" else "A"
    for folder in (os.path.join(dataroot, phase + side), os.path.join(dataroot, phase)):
        if os.path.isdir(folder):
            paths = make_dataset(folder)
            if paths:
                return folder, paths
    return dataroot, make_dataset(dataroot)


@DATASETS.register("single")
class SingleDataset(BaseDataset):
    """One folder of images, loaded as A only."""

    caches_resized_images = True

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.dir_A, paths = self.locate(opt)
        self.A_paths = paths[:int(min(opt.max_dataset_size, len(paths)))]
        if opt.preprocess == "crop":
            for path in self.A_paths:
                try:
                    self.check_fits(path, image_size(path))
                except UnreadableImageError:
                    continue  # reported and skipped when loaded

    def locate(self, opt: argparse.Namespace) -> Tuple[str, List[str]]:
        """(where the images are, their sorted paths); the shard mode finds them in tar files."""
        if not os.path.isdir(opt.dataroot):
            raise UserError(f"dataroot {opt.dataroot} does not exist; --dataset_mode single "
                            f"expects {LAYOUT}")
        folder, paths = find_single_folder(opt.dataroot, opt.phase, opt.direction)
        if not paths:
            raise UserError(f"no images in {opt.dataroot}; --dataset_mode single expects "
                            f"{LAYOUT}")
        return folder, paths

    def __getitem__(self, index: int) -> dict:
        path = self.A_paths[index]
        try:
            A, = self.prepared(path, lambda: (self.load_checked(path, self.input_output_nc()[0]),))
        except UnreadableImageError as e:
            return self.skip(path, e.reason)
        params = self.params_for(A, item_generator(index))
        return {"A": self.transform(A, params), "A_paths": path}

    def __len__(self) -> int:
        return len(self.A_paths)

    def describe(self) -> str:
        return f"single images from {self.dir_A}"
