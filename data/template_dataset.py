"""A template dataset mode: copy this file to add your own.

To add a mode called ``dummy``:

1. Copy this file to ``data/dummy_dataset.py`` and rename the class.
2. Register it with ``@DATASETS.register("dummy")``.
3. Add one line to ``data/__init__.py``: ``from data import dummy_dataset  # noqa: F401``.
4. Implement ``__init__`` (find the files, fail early with a ``UserError`` that names the
   expected layout), ``__len__`` and ``__getitem__`` (a dict with "A", "B", "A_paths",
   "B_paths"; tensors ``C x H x W`` in [-1, 1]).
5. Optionally add flags in ``modify_commandline_options``.

Use it with ``--dataset_mode dummy``. A mode outside this repository also works without
registration: ``--dataset_mode my_package.my_module.MyDataset``.

This example makes a self-supervised deblurring task from any folder of images
``<dataroot>/<phase>/``: B is the image, A the same image shrunk by
``--template_blur_factor`` and blown up again.
"""

from __future__ import annotations

import argparse
import os

import torch.nn.functional as F

from data.base_dataset import DATASETS, BaseDataset, item_generator, splits_hint
from data.image_folder import UnreadableImageError, convert_channels, make_dataset, read_image
from util.errors import UserError

LAYOUT = "<dataroot>/<phase>/ holding images"


@DATASETS.register("template")
class TemplateDataset(BaseDataset):
    """Blurred image (A) -> sharp image (B), from a single folder of images."""

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser,
                                   is_train: bool) -> argparse.ArgumentParser:
        parser.add_argument("--template_blur_factor", type=int, default=4,
                            help="A is B shrunk by this factor and resized back")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.dir = os.path.join(opt.dataroot, opt.phase)
        if not os.path.isdir(self.dir):
            raise UserError(f"no folder {self.dir} for --dataset_mode template; "
                            f"expected {LAYOUT}{splits_hint(opt.dataroot, opt.phase)}")
        self.paths = make_dataset(self.dir, opt.max_dataset_size)
        if not self.paths:
            raise UserError(f"no images in {self.dir}; expected {LAYOUT}")
        self.blur_factor = getattr(opt, "template_blur_factor", 4)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        input_nc, output_nc = self.input_output_nc()
        try:
            image = read_image(path)
        except UnreadableImageError as e:
            return self.skip(path, e.reason)
        params = self.params_for(image, item_generator(index))  # one crop/flip for A and B
        B = self.transform(convert_channels(image, output_nc, path), params)
        sharp = self.transform(convert_channels(image, input_nc, path), params)
        small = F.interpolate(sharp[None], scale_factor=1.0 / self.blur_factor, mode="area")
        A = F.interpolate(small, size=sharp.shape[1:], mode="bilinear", align_corners=False)[0]
        return {"A": A, "B": B, "A_paths": path, "B_paths": path}

    def __len__(self) -> int:
        return len(self.paths)
