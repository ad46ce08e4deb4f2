"""Datasets and data loading.

``create_dataset(opt)`` builds the dataset mode named by ``--dataset_mode`` (looked up in
``DATASETS``); ``create_dataloader(opt, dataset)`` wraps it in a ``DataLoader`` whose
sampler (``loader.sampler``, a ``ResumableSampler``) gives a reproducible, resumable order.

To add a dataset mode, copy ``data/template_dataset.py`` (it explains the steps), register
the class with ``@DATASETS.register("name")`` and import its module below, one line per mode.

``--dataset_mode webdataset`` reads the aligned, unaligned, single and paired layouts from
WebDataset tar shards with those modes' own classes (``data.webdataset_dataset``).

Unreadable images do not stop a run: the dataset warns once and returns a marker, and
``collate_skip_unreadable`` drops it. Each batch has a "skipped" list of the dropped paths;
when a whole batch failed, the batch is only ``{"skipped": [...]}`` (no "A").
"""

from __future__ import annotations

import argparse
import os
from typing import List, Optional

import torch
from torch.utils.data import DataLoader
from torch.utils.data._utils.collate import default_collate

from data.base_dataset import DATASETS, BaseDataset, get_params, get_transform, validate_sizes
from data.image_folder import UnreadableImageError, read_image, set_image_cache
from data.sampler import ResumableSampler

# One import line per dataset mode: importing the module registers it.
# isort: off
from data import aligned_dataset  # noqa: F401
from data import unaligned_dataset  # noqa: F401
from data import single_dataset  # noqa: F401
from data import template_dataset  # noqa: F401
from data import paired_dataset  # noqa: F401
from data import volume_dataset  # noqa: F401
from data import colorization_dataset  # noqa: F401
from data import label_dataset  # noqa: F401
from data import multidomain_dataset  # noqa: F401
from data import webdataset_dataset  # noqa: F401
# isort: on

__all__ = ["DATASETS", "BaseDataset", "ResumableSampler", "collate_skip_unreadable",
           "create_dataloader", "create_dataset", "first_batch", "get_dataset_class", "get_option_setter",
           "get_params", "get_transform", "preload_images", "validate_sizes"]


def get_dataset_class(name: str) -> type:
    """The class registered as ``name`` (or a dotted path); UserError lists valid names."""
    return DATASETS.get(name)


def get_option_setter(name: str):
    """The mode's ``modify_commandline_options``, for the options parser."""
    return get_dataset_class(name).modify_commandline_options


def create_dataset(opt: argparse.Namespace) -> BaseDataset:
    """Check the size options, then build the dataset mode ``opt.dataset_mode``."""
    dataset_class = get_dataset_class(opt.dataset_mode)
    validate_sizes(opt)
    dataset = dataset_class(opt)
    if opt.cache_images:
        if dataset.caches_resized_images:  # images kept after the resize step: no decoding, no resizing
            dataset.preload()
        else:  # other modes: decoded images
            set_image_cache(True)
            preload_images(dataset)
    return dataset


def preload_images(dataset: BaseDataset) -> int:
    """Decode every image of ``dataset`` into the ``--cache_images`` cache; returns the count.

    The images are those in the dataset's lists of paths (attributes named ``*_paths``).
    Loading them here, in the main process, lets the DataLoader's forked workers share one
    copy. Unreadable files are left out; the dataset skips them as usual when asked for them.
    """
    paths = sorted({p for name, value in vars(dataset).items() if name.endswith("_paths")
                    and isinstance(value, (list, tuple)) for p in value if isinstance(p, str)})
    for path in paths:
        try:
            read_image(path)
        except UnreadableImageError:
            pass
    return len(paths)


def collate_skip_unreadable(items: List[Optional[dict]]) -> dict:
    """``default_collate`` over the readable items, plus "skipped": the dropped paths."""
    good, skipped = [], []
    for item in items:
        if item is None:
            skipped.append("<unknown>")
        elif "skipped" in item:
            skipped.append(item["skipped"])
        else:
            good.append(item)
    if not good:
        return {"skipped": skipped}
    batch = default_collate(good)
    batch["skipped"] = skipped
    return batch


def create_dataloader(opt: argparse.Namespace, dataset: BaseDataset, shuffle: Optional[bool] = None,
                      rank: int = 0, world_size: int = 1, drop_last: bool = False) -> DataLoader:
    """A DataLoader over ``dataset``; shuffles by default when training without
    ``--serial_batches``. Call ``loader.sampler.set_epoch(epoch)`` every epoch. Under
    ``torchrun`` each ``rank`` reads its own shard of the same (seed, epoch) order; without
    ``--seed`` the ranks agree on one drawn seed. ``drop_last``: leave out an epoch's last
    batch when it is short (CUT's data/__init__.py: ``drop_last=True if opt.isTrain``)."""
    if shuffle is None:
        shuffle = bool(opt.isTrain and not opt.serial_batches)
    seed = opt.seed
    if seed is None and world_size > 1:
        seed = _shared_random_seed()
    # A subset of a dataset (validation's held-out part) keeps no groups: its indices are picked.
    group = getattr(dataset, "sample_group", 1)
    sampler = ResumableSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size,
                               group=group)
    # More loader processes than cores only adds switching (and a PyTorch warning).
    workers = min(int(opt.num_threads), _usable_cpus())
    if opt.cache_images and dataset.caches_resized_images and not _uses_cuda(opt):
        # A cached sample is a crop and a flip (well under a millisecond): in this process it
        # costs less than a worker's hand-over, and no worker takes a core from the CPU step.
        workers = 0
    # Seeds each worker's global RNG (and python/numpy RNGs) from --seed, for code that
    # draws from them; the dataset's own choices come from the sampler's indices.
    generator = torch.Generator().manual_seed(sampler.seed)
    return DataLoader(dataset, batch_size=opt.batch_size, sampler=sampler,
                      num_workers=workers, collate_fn=collate_skip_unreadable,
                      drop_last=drop_last, persistent_workers=workers > 0,
                      pin_memory=_uses_cuda(opt), generator=generator)


def _shared_random_seed() -> int:
    import torch.distributed as dist

    box = [int(torch.randint(0, 2 ** 31 - 1, (1,)))]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def first_batch(dataset: BaseDataset, batch_size: int) -> dict:
    """A batch of the first ``batch_size`` readable items, for a model's set-up on data
    (``BaseModel.data_dependent_initialize``). Reading leaves the random streams as they were."""
    from util.checkpoint import preserved_rng

    items = []
    with preserved_rng():
        for index in range(len(dataset)):
            item = dataset[index]
            if item is not None and "skipped" not in item:
                items.append(item)
            if len(items) == batch_size:
                break
    return collate_skip_unreadable(items) if items else {}


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _uses_cuda(opt: argparse.Namespace) -> bool:
    """Pinned batches copy to a GPU asynchronously; for CPU training they are only overhead."""
    gpu_ids = opt.gpu_ids
    return torch.cuda.is_available() and (gpu_ids is None or len(gpu_ids) > 0)
