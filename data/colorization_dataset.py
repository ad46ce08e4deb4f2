"""Colour photos as (lightness, colour) pairs, for ``--model colorization``.

Any layout of RGB images under ``<dataroot>/<phase>/`` (searched recursively). Each image is
preprocessed as usual (resize, crop, flip), then converted to CIE Lab: A is the lightness
``L / 50 - 1`` (1 channel), B the colour ``ab / 110`` (2 channels); see ``util/lab.py``.
"""

from __future__ import annotations

import argparse
import os

from data.base_dataset import DATASETS, BaseDataset, item_generator, splits_hint
from data.image_folder import UnreadableImageError, make_dataset
from util.errors import UserError
from util.lab import rgb_to_lab

LAYOUT = "<dataroot>/<phase>/ holding colour images (any sub-folders)"


@DATASETS.register("colorization")
class ColorizationDataset(BaseDataset):
    """L (input) -> ab (target) from colour images."""

    caches_resized_images = True

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        # One lightness channel in, two colour channels out.
        parser.set_defaults(input_nc=1, output_nc=2, direction="AtoB")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        if opt.input_nc != 1 or opt.output_nc != 2 or opt.direction != "AtoB":
            raise UserError(f"--dataset_mode colorization gives 1 channel (L) in and 2 (ab) out, AtoB; got "
                            f"--input_nc {opt.input_nc} --output_nc {opt.output_nc} --direction {opt.direction}")
        self.dir = os.path.join(opt.dataroot, opt.phase)
        if not os.path.isdir(self.dir):
            raise UserError(f"no folder {self.dir} for --dataset_mode colorization; expected {LAYOUT}"
                            f"{splits_hint(opt.dataroot, opt.phase)}")
        self.paths = make_dataset(self.dir, opt.max_dataset_size)
        if not self.paths:
            raise UserError(f"no images in {self.dir}; expected {LAYOUT}")

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        try:
            rgb, = self.prepared(path, lambda: (self.load_checked(path, 3),))
        except UnreadableImageError as e:
            return self.skip(path, e.reason)
        rgb = self.transform(rgb, self.params_for(rgb, item_generator(index)))
        L, ab = rgb_to_lab((rgb + 1.0) / 2.0)
        return {"A": L, "B": ab, "A_paths": path, "B_paths": path}

    def __len__(self) -> int:
        return len(self.paths)

    def describe(self) -> str:
        return f"{len(self.paths)} colour images in {self.dir}"
