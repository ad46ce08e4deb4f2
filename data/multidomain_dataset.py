"""Images of several domains: ``<dataroot>/<phase>/<domain>/`` holds one domain each (StarGAN v2).

Item ``i`` is image ``i`` of all domains' images (in domain order), with its domain's
number, and two reference images of one target domain drawn at random (the same for both,
the images chosen at random within it; hashed from the sampler's seed, epoch and index, so
``--seed`` reproduces them across workers and resumes). The domains are the sub-folders'
names, sorted, unless ``--domains a,b,...`` names them (a trained run keeps its list in
train_opt.json, so testing reads the same numbering).
"""

from __future__ import annotations

import argparse
import os

import torch

from data.base_dataset import DATASETS, BaseDataset, item_generator
from data.image_folder import UnreadableImageError, make_dataset
from util.errors import UserError

LAYOUT = "<dataroot>/<phase>/<domain>/ holding the images of each domain (at least two domains)"


def domain_folders(root: str) -> list:
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))) if os.path.isdir(root) else []


@DATASETS.register("multidomain")
class MultiDomainDataset(BaseDataset):
    """One folder per domain; items carry a domain label and references of a target domain."""

    unused_options = {"direction": "the domains are numbered by --domains (or the folders' names), not A and B"}

    @staticmethod
    def modify_commandline_options(parser, is_train: bool = True):
        parser.add_argument("--domains", default="",
                            help="the domain folders, in label order, separated by commas (default: all "
                                 "sub-folders of <dataroot>/<phase>, sorted)")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        root = os.path.join(opt.dataroot, opt.phase)
        found = domain_folders(root)
        self.domains = opt.domains.split(",") if opt.domains else found
        missing = [d for d in self.domains if d not in found]
        if len(self.domains) < 2 or missing:
            what = f"no folder {', '.join(missing)} in {root}" if missing else f"{len(found)} domain folder(s) in {root}"
            raise UserError(f"--dataset_mode multidomain: {what}; expected {LAYOUT}")
        opt.domains = ",".join(self.domains)  # saved with the run: the labels' meaning
        self.paths = {d: make_dataset(os.path.join(root, d), opt.max_dataset_size) for d in self.domains}
        for domain, paths in self.paths.items():
            if not paths:
                raise UserError(f"no images in {os.path.join(root, domain)}; expected {LAYOUT}")
        self.items = [(path, label) for label, d in enumerate(self.domains) for path in self.paths[d]]

    def load(self, path: str, generator) -> torch.Tensor:
        img = self.load_checked(path, self.opt.input_nc)
        return self.transform_for(self.params_for(img, generator))(img)

    def __getitem__(self, index: int) -> dict:
        generator = item_generator(index)
        path, label = self.items[index % len(self.items)]
        target = int(torch.randint(0, len(self.domains), (1,), generator=generator))
        refs = self.paths[self.domains[target]]
        picks = torch.randint(0, len(refs), (2,), generator=generator).tolist()
        try:
            images = [self.load(p, generator) for p in (path, refs[picks[0]], refs[picks[1]])]
        except UnreadableImageError as e:
            return self.skip(e.path, e.reason)
        return {"A": images[0], "A_label": label, "ref": images[1], "ref2": images[2], "ref_label": target,
                "A_paths": path, "ref_paths": refs[picks[0]]}

    def __len__(self) -> int:
        return len(self.items)

    def describe(self) -> str:
        return ", ".join(f"{d}: {len(self.paths[d])}" for d in self.domains) + f" in {self.opt.dataroot}"
