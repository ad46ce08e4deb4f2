"""Label maps with their photos, pix2pixHD's and SPADE's layout::

    <dataroot>/<phase>_label/x.png   class ids, one 8-bit channel (0 .. label_nc - 1)
    <dataroot>/<phase>_img/x.jpg     the photo (the target); paired by file name
    <dataroot>/<phase>_inst/x.png    optional instance ids (8- or 16-bit), for boundaries

(NVIDIA/pix2pixHD data/aligned_dataset.py and NVlabs/SPADE data/custom_dataset.py read the
same three folders.) ``datasets/make_maps_labels.py`` writes it from the maps tiles.

Items are ``{"A": label ids, "B": photo, "inst": instance ids, ...}``: A and inst as float
tensors of whole numbers, 1 x H x W, resized with nearest neighbours (an id is never a mix
of its neighbours) and cropped and flipped with the photo's parameters; B in [-1, 1] as in
every mode. The model turns A into one-hot channels (its ``--label_nc``).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from data.base_dataset import DATASETS, PREPROCESS_MODES, BaseDataset, crop_image, item_generator, resized_size
from data.image_folder import UnreadableImageError, load_image
from data.paired_dataset import list_files
from util.errors import UserError

LAYOUT = "<dataroot>/<phase>_label/ (class ids) and <dataroot>/<phase>_img/ (photos), paired by name"
LABEL_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_ids(path: str) -> torch.Tensor:
    """1 x H x W int64 ids of an 8- or 16-bit single-channel map."""
    try:
        with Image.open(path) as im:
            array = np.asarray(im)
    except (OSError, ValueError, SyntaxError) as e:
        raise UnreadableImageError(path, str(e)) from None
    if array.ndim != 2:
        raise UserError(f"{path} has {array.shape[2]} channels; a label or instance map has one (class ids)")
    return torch.from_numpy(array.astype(np.int64))[None]


@DATASETS.register("label")
class LabelDataset(BaseDataset):
    """Label maps (and instance maps) as input, photos as target."""

    unused_options = {"direction": "label maps are always the input (A) and photos the target (B)",
                      "input_nc": "the input is --label_nc one-hot channels, read from 1-channel class-id maps"}

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        folder = {kind: os.path.join(opt.dataroot, f"{opt.phase}_{kind}") for kind in ("label", "img", "inst")}
        if not os.path.isdir(folder["label"]):
            raise UserError(f"no folder {folder['label']} for --dataset_mode label; expected {LAYOUT} "
                            f"(datasets/make_maps_labels.py writes it from the maps tiles)")
        labels = list_files(folder["label"], LABEL_EXTENSIONS)
        images = list_files(folder["img"], IMAGE_EXTENSIONS) if os.path.isdir(folder["img"]) else {}
        insts = list_files(folder["inst"], LABEL_EXTENSIONS) if os.path.isdir(folder["inst"]) else {}
        lonely = sorted(k for k in labels if k not in images)
        if lonely and opt.isTrain:
            raise UserError(f"{labels[lonely[0]]} has no photo in {folder['img']} (of the same name); "
                            f"expected {LAYOUT}")
        keys = sorted(labels)[:int(min(opt.max_dataset_size, len(labels)))]
        if not keys:
            raise UserError(f"no label maps in {folder['label']}; expected {LAYOUT}")
        self.items = [(labels[k], images.get(k), insts.get(k)) for k in keys]
        self.has_instances = bool(insts)

    def __getitem__(self, index: int) -> dict:
        label_path, image_path, inst_path = self.items[index]
        try:
            label = read_ids(label_path)
            inst = read_ids(inst_path) if inst_path else None
            photo = load_image(image_path, self.opt.output_nc) if image_path else None
        except UnreadableImageError as e:
            return self.skip(label_path, e.reason)
        params = self.params_for(label, item_generator(index))
        item = {"A": self.nearest(label, params), "A_paths": label_path, "B_paths": image_path or label_path}
        if photo is not None:
            if photo.shape[1:] != label.shape[1:]:
                raise UserError(f"{image_path} is {photo.shape[2]}x{photo.shape[1]} but its label map "
                                f"{label_path} is {label.shape[2]}x{label.shape[1]}")
            item["B"] = self.transform(photo, params)
            item["paired"] = True  # the photo is this label map's ground truth (test.py's metrics)
        if inst is not None:
            item["inst"] = self.nearest(inst, params)
        return item

    def nearest(self, ids: torch.Tensor, params: dict) -> torch.Tensor:
        """``ids`` through the photo's resize (nearest), crop and flip, as float."""
        opt = self.opt
        size = resized_size(opt.preprocess, opt.load_size, opt.crop_size, (ids.shape[2], ids.shape[1]),
                            opt.size_multiple)
        ids = ids.float()  # ids up to 2**24 are exact in float32
        if (ids.shape[2], ids.shape[1]) != size:
            ids = TF.resize(ids, [size[1], size[0]], interpolation=InterpolationMode.NEAREST)
        if PREPROCESS_MODES[opt.preprocess][1]:
            ids = crop_image(ids, params["crop_pos"], opt.crop_size)
        if params["flip"] and not opt.no_flip:
            ids = ids.flip(-1)
        return ids

    def __len__(self) -> int:
        return len(self.items)

    def describe(self) -> str:
        return f"label maps from {os.path.join(self.opt.dataroot, self.opt.phase + '_label')}"
