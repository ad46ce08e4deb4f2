"""Data in WebDataset tar shards: ``--dataset_mode webdataset --shards_of MODE``.

The shards mirror a folder layout, one shard set per folder (``data.shards``;
``scripts/make_shards.py`` writes them): ``<dataroot>/<phase>-*.tar`` for aligned A|B
images, ``<dataroot>/<phase>A-*.tar`` and ``<phase>B-*.tar`` for unaligned or paired data,
``<phase>A`` (or ``<phase>``) for single images. ``--shards_of`` names the folder mode whose
rules apply (default: the model's own dataset mode): the instance *is* that mode's class,
reading its files from the tars, so items, crops, flips, unaligned partners and intensity
windows are those of the folder, for every file type the codec reads (8/16-bit PNG, TIFF,
``.npy``, JPEG). With the same seed a run on shards is the run on the folder.

Order, splitting and resume are the folder modes': the ``ResumableSampler`` permutes all
samples per (seed, epoch); under torchrun each rank reads every world_size-th sample of it,
and the DataLoader's workers share a rank's batches. Every rank indexes every shard (headers
only) and reads just its own samples by seeking, so the split is by sample, not by whole
shards, and a resume continues at the sample where the run stopped.
"""

from __future__ import annotations

import argparse
import os
from typing import Dict, List, Optional, Tuple

from data.aligned_dataset import AlignedDataset
from data.base_dataset import DATASETS, BaseDataset
from data.codec import IMAGE_ARRAY_EXTENSIONS, IMG_EXTENSIONS
from data.intensity import add_intensity_options, intensity_params
from data.paired_dataset import INTENSITY_KEYS, PairedDataset, pair_listed
from data.shards import ShardMember, shard_files, shard_paths
from data.single_dataset import SingleDataset
from data.unaligned_dataset import UnalignedDataset
from util.errors import UserError


def _made_by(opt: argparse.Namespace) -> str:
    return (f"make them from a folder dataset with: python scripts/make_shards.py DATAROOT {opt.dataroot} "
            f"--phase {opt.phase}")


def _listed(opt: argparse.Namespace, name: str, extensions: Tuple[str, ...]) -> Tuple[str, Dict[str, ShardMember]]:
    files = shard_files(opt.dataroot, name, extensions, _made_by(opt))
    return os.path.join(opt.dataroot, f"{name}-*.tar"), files


def _sides(opt: argparse.Namespace) -> Tuple[str, str]:
    return ("A", "B") if opt.direction != "BtoA" else ("B", "A")


def _first(files: Dict[str, ShardMember], opt: argparse.Namespace) -> List[ShardMember]:
    members = list(files.values())
    return members[:int(opt.max_dataset_size)] if opt.max_dataset_size < len(members) else members


class ShardedAligned(AlignedDataset):
    """``--dataset_mode aligned`` on ``<phase>-*.tar``."""

    def locate(self, opt):
        where, files = _listed(opt, opt.phase, IMG_EXTENSIONS)
        return where, _first(files, opt)


class ShardedUnaligned(UnalignedDataset):
    """``--dataset_mode unaligned`` on ``<phase>A-*.tar`` and ``<phase>B-*.tar``."""

    def locate(self, opt):
        located = [_listed(opt, opt.phase + side, IMAGE_ARRAY_EXTENSIONS) for side in _sides(opt)]
        return [(where, _first(files, opt)) for where, files in located]


class ShardedSingle(SingleDataset):
    """``--dataset_mode single`` on ``<phase>A-*.tar`` (``B`` with BtoA), else ``<phase>-*.tar``."""

    def locate(self, opt):
        names = [opt.phase + _sides(opt)[0], opt.phase]
        name = next((n for n in names if shard_paths(opt.dataroot, n)), names[-1])
        where, files = _listed(opt, name, IMAGE_ARRAY_EXTENSIONS)
        return where, list(files.values())


class ShardedPaired(PairedDataset):
    """``--dataset_mode paired`` on ``<phase>A-*.tar`` and ``<phase>B-*.tar``, paired by key."""

    def locate(self, opt):
        intensity_params(opt)  # a mistake in the intensity flags comes before any shard is read
        (dir_A, files_A), (dir_B, files_B) = (_listed(opt, opt.phase + s, IMAGE_ARRAY_EXTENSIONS) for s in _sides(opt))
        return dir_A, dir_B, pair_listed(files_A, files_B, dir_A, dir_B, opt.max_dataset_size)


# --shards_of -> the folder mode's class that reads from shards.
SHARDED = {"aligned": ShardedAligned, "unaligned": ShardedUnaligned, "single": ShardedSingle,
           "paired": ShardedPaired}


def model_refusal(model: str, mode: str) -> Optional[str]:
    """Why ``--dataset_mode webdataset`` cannot read ``mode`` (the ``--shards_of`` asked for,
    by default the model's own dataset mode); None when it can."""
    if mode in SHARDED:
        return None
    return (f"--dataset_mode webdataset holds {', '.join(SHARDED)} data (--shards_of); --model {model} reads "
            f"--dataset_mode {mode}")


@DATASETS.register("webdataset")
class WebDatasetDataset(BaseDataset):
    """Shards of one of the folder modes; building one gives that mode's sharded class."""

    architecture_keys = INTENSITY_KEYS  # test.py maps values as training did (--shards_of paired)
    model_refusal = staticmethod(model_refusal)  # pix2cycle/compatibility.py asks it too

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        own = parser.get_default("dataset_mode")  # the model's, set by its hook before this one
        parser.add_argument("--shards_of", default=own,
                            help=f"the folder mode whose layout the shards hold and whose rules apply: "
                                 f"{', '.join(SHARDED)} (default: the model's dataset mode)")
        if own not in SHARDED and own in DATASETS:
            # Its flags are known, so a command for that mode is refused by name (model_refusal),
            # not as unknown flags.
            DATASETS.get(own).modify_commandline_options(parser, is_train)
        if not any(action.dest == "intensity" for action in parser._actions):
            add_intensity_options(parser)  # read with --shards_of paired
        return parser

    def __new__(cls, opt: argparse.Namespace) -> BaseDataset:
        reason = model_refusal(opt.model, opt.shards_of)
        if reason is not None:
            raise UserError(reason)
        return SHARDED[opt.shards_of](opt)
