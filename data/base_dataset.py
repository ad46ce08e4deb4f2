"""The dataset contract, the preprocessing transforms and the size checks.

A dataset mode subclasses ``BaseDataset`` and implements ``__len__`` and ``__getitem__``;
it may add its own flags in ``modify_commandline_options``. Only dataset classes read the
options object; the transforms here take plain arguments.

Preprocessing (``--preprocess``), applied to ``C x H x W`` images as ``load_image`` gives
them (uint8, or float32 in [0, 1]):

* ``resize_and_crop``: resize to ``load_size x load_size``, then crop ``crop_size``.
* ``crop``: crop ``crop_size`` only (an image smaller than that is an error).
* ``scale_width``: width to ``load_size`` keeping the aspect ratio, height at least
  ``crop_size`` (kept as is when the width already is ``load_size``); then both sides are
  rounded to the generator's size multiple.
* ``scale_width_and_crop``: as ``scale_width`` without the rounding, then crop ``crop_size``.
* ``none``: sides rounded to the nearest multiple of the generator's size multiple.

Each image is resized at most once, straight to its final size. Then an optional
horizontal flip, and the mapping to [-1, 1] (``x / 255 * 2 - 1`` for uint8, the same bits
as the reference's ToTensor and Normalize(0.5, 0.5)).

8-bit images are resized as the reference does it: PIL's bicubic filter on the 8-bit image
(rounded and clipped to bytes), so a training step sees the reference's exact input. Float
images (16-bit files) are resized as floats with torch's antialiased bicubic, the same
filter, without the rounding to 8 bits.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Dict, Hashable, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.utils.data as data
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from data.image_folder import load_image, to_unit_float
from data.sampler import derived_seed
from util.errors import UserError
from util.registry import Registry

# dataset mode name -> BaseDataset subclass; modules register with @DATASETS.register(name).
DATASETS = Registry("dataset mode", dotted=True)

Size = Tuple[int, int]  # (width, height), as in PIL


def _same_size(w: int, h: int, load_size: int, crop_size: int) -> Size:
    return w, h


def _square_size(w: int, h: int, load_size: int, crop_size: int) -> Size:
    return load_size, load_size


def _scale_width_size(w: int, h: int, load_size: int, crop_size: int) -> Size:
    # As the reference: the height never drops below crop_size so a crop always fits.
    if w == load_size and h >= crop_size:
        return w, h
    return load_size, int(max(load_size * h / w, crop_size))


# preprocess name -> (size after the resize step, whether a crop follows).
PREPROCESS_MODES = Registry("--preprocess")
PREPROCESS_MODES.add("resize_and_crop", (_square_size, True))
PREPROCESS_MODES.add("crop", (_same_size, True))
PREPROCESS_MODES.add("scale_width", (_scale_width_size, False))
PREPROCESS_MODES.add("scale_width_and_crop", (_scale_width_size, True))
PREPROCESS_MODES.add("none", (_same_size, False))


def splits_hint(dataroot: str, phase: str, paired_sides: bool = False) -> str:
    """For a missing ``<phase>`` folder: the splits ``dataroot`` does have, e.g. ``"; ./maps
    has the splits train, val: choose one with --phase (e.g. --phase val)"``; "" when none.

    ``paired_sides``: splits are ``<split>A/`` + ``<split>B/`` folders (unpaired layouts)."""
    try:
        folders = sorted(e.name for e in os.scandir(dataroot) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return ""
    if paired_sides:
        splits = [f[:-1] for f in folders if f.endswith("A") and f[:-1] + "B" in folders and f[:-1]]
    else:
        splits = folders
    splits = [s for s in splits if s != phase]
    if not splits:
        return ""
    example = "val" if "val" in splits else splits[0]
    return (f"; {dataroot} has the split{'s' if len(splits) > 1 else ''} {', '.join(splits)}: choose one with "
            f"--phase (e.g. --phase {example})")


def check_preprocess(preprocess: str) -> None:
    PREPROCESS_MODES.get(preprocess)  # an unknown mode is refused, listing the known ones


def resized_size(preprocess: str, load_size: int, crop_size: int, size: Size, multiple: int = 4) -> Size:
    """(width, height) of an image of ``size`` after the resize step of ``preprocess``: the
    mode's rule, then, when no crop follows, each side rounded to ``multiple``.

    Applied to its own result it gives that result again, so an image resized once (and
    kept by ``--cache_images``) is not resized again."""
    check_preprocess(preprocess)
    rule, crop = PREPROCESS_MODES[preprocess]
    w, h = rule(size[0], size[1], load_size, crop_size)
    if crop:
        return w, h
    return round_to_multiple(w, multiple), round_to_multiple(h, multiple)


def round_to_multiple(value: int, multiple: int) -> int:
    """Nearest multiple of ``multiple``, at least one multiple."""
    return max(multiple, int(round(value / multiple)) * multiple)


def get_params(preprocess: str, load_size: int, crop_size: int, size: Size, no_flip: bool,
               generator: Optional[torch.Generator] = None) -> dict:
    """Draw a crop position and a flip for an image of ``size`` = (w, h).

    Random numbers come from ``generator`` (or torch's global RNG), so ``--seed`` makes
    them reproducible. Pass the same result to the transforms of A and B to keep a pair
    aligned.
    """
    w, h = resized_size(preprocess, load_size, crop_size, size)
    x = int(torch.randint(0, max(0, w - crop_size) + 1, (1,), generator=generator))
    y = int(torch.randint(0, max(0, h - crop_size) + 1, (1,), generator=generator))
    flip = bool(torch.rand(1, generator=generator) < 0.5) and not no_flip
    return {"crop_pos": (x, y), "flip": flip}


# channels -> the PIL mode that resizes them in one call. Others (gray + alpha, RGBA, more
# channels) go channel by channel: PIL would premultiply LA and RGBA by their alpha.
_PIL_RESIZE_MODES = {1: "L", 3: "RGB"}


def _resize_uint8(img: torch.Tensor, size: Size) -> torch.Tensor:
    """PIL's bicubic resize of an 8-bit image: the reference's ``Resize`` on a PIL image."""
    array = img.permute(1, 2, 0).numpy()
    mode = _PIL_RESIZE_MODES.get(img.shape[0])
    if mode is not None:
        out = np.asarray(Image.fromarray(array.squeeze(2) if mode == "L" else array, mode)
                         .resize(size, Image.BICUBIC))
    else:  # the same filter, one channel at a time
        out = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(array[:, :, c]), "L")
                                   .resize(size, Image.BICUBIC)) for c in range(array.shape[2])], axis=2)
    if out.ndim == 2:
        out = out[:, :, None]
    return torch.from_numpy(out.transpose(2, 0, 1).copy())


def _resize(img: torch.Tensor, size: Size) -> torch.Tensor:
    if (img.shape[2], img.shape[1]) == size:
        return img
    if img.dtype == torch.uint8:
        return _resize_uint8(img, size)
    out = TF.resize(img, [size[1], size[0]], interpolation=InterpolationMode.BICUBIC,
                    antialias=True)
    # Bicubic overshoots at edges; clamp like PIL does on 8-bit images.
    return out.clamp_(0.0, 1.0)


class Transform:
    """Callable ``C x H x W`` image (uint8, or float in [0, 1]) -> float32 tensor in [-1, 1]."""

    def __init__(self, preprocess: str, load_size: int, crop_size: int,
                 params: Optional[dict] = None, no_flip: bool = False, multiple: int = 4) -> None:
        check_preprocess(preprocess)
        self.preprocess, self.load_size, self.crop_size = preprocess, load_size, crop_size
        self.params, self.no_flip, self.multiple = params, no_flip, multiple

    def resize(self, img: torch.Tensor) -> torch.Tensor:
        """The resize step alone: the same for every sample, so ``--cache_images`` keeps its
        result. Idempotent: ``__call__`` leaves an image already at this size as it is."""
        size = resized_size(self.preprocess, self.load_size, self.crop_size,
                            (img.shape[2], img.shape[1]), self.multiple)
        return _resize(img, size)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        _, crop = PREPROCESS_MODES[self.preprocess]
        img = self.resize(img)
        params = self.params
        if params is None:  # unpaired use: draw fresh params from the global RNG
            params = get_params(self.preprocess, self.load_size, self.crop_size,
                                (img.shape[2], img.shape[1]), self.no_flip)
        if crop:
            img = crop_image(img, params["crop_pos"], self.crop_size)
        if params["flip"] and not self.no_flip:
            img = img.flip(-1)
        return to_unit_float(img) * 2.0 - 1.0


def crop_image(img: torch.Tensor, pos: Tuple[int, int], crop_size: int) -> torch.Tensor:
    """Square crop at ``pos`` = (x, y); raises ValueError when the image is too small."""
    h, w = img.shape[1:]
    if w < crop_size or h < crop_size:
        raise ValueError(f"image {w}x{h} is smaller than crop_size {crop_size}")
    x, y = min(pos[0], w - crop_size), min(pos[1], h - crop_size)
    return img[:, y:y + crop_size, x:x + crop_size]


def get_transform(preprocess: str, load_size: int, crop_size: int, params: Optional[dict] = None,
                  no_flip: bool = False, multiple: int = 4) -> Transform:
    """The preprocessing pipeline; ``params`` from ``get_params`` fix crop and flip."""
    return Transform(preprocess, load_size, crop_size, params, no_flip, multiple)


def _valid_multiples(value: int, multiple: int, smallest: int = 1) -> str:
    first = max(1, value // multiple, -(-smallest // multiple))
    return ", ".join(str(k * multiple) for k in range(first, first + 3)) + ", ..."


def validate_sizes(opt: argparse.Namespace) -> None:
    """Reject size options that cannot work, before any image is read."""
    check_preprocess(opt.preprocess)
    multiple = opt.size_multiple
    # Who sets the sizes: --netG, or a model with a generator of its own (options' finalize).
    sizes_by = f"--model {opt.model}" if getattr(opt, "model_sets_sizes", False) else f"--netG {opt.netG}"
    needed_by = f" needed by {sizes_by.replace('--netG ', '')}"
    _, crop = PREPROCESS_MODES[opt.preprocess]
    if crop and opt.preprocess != "crop" and opt.load_size < opt.crop_size:
        raise UserError(f"load_size {opt.load_size} is smaller than crop_size {opt.crop_size} "
                        f"with --preprocess {opt.preprocess}; use load_size >= crop_size "
                        f"(e.g. --load_size {opt.crop_size + opt.crop_size // 8} "
                        f"--crop_size {opt.crop_size})")
    checked = [("crop_size", opt.crop_size)] if crop else []
    if opt.preprocess == "scale_width":
        checked.append(("load_size", opt.load_size))
    smallest = opt.min_input_size
    for name, value in checked:
        if value < 1 or value % multiple:
            raise UserError(f"{name} {value} is not a multiple of {multiple}{needed_by}; "
                            f"valid: {_valid_multiples(value, multiple, smallest)}")
        if value < smallest:
            # Caught here, not as a norm-layer error from a 1x1 feature map mid-training.
            nets = sizes_by + (f" and --netD {opt.netD} (--n_layers_D {opt.n_layers_D})" if opt.isTrain else "")
            raise UserError(f"{name} {value} is too small for {nets}: images must be at least "
                            f"{smallest} pixels; valid: {_valid_multiples(value, multiple, smallest)}")


def item_generator(index: int) -> Optional[torch.Generator]:
    """A generator for one sample's random choices, or None for the global RNG.

    Indices from ``ResumableSampler`` carry their seed and epoch; hashing
    (seed, epoch, index) makes crops, flips and unaligned partners the same whatever the
    number of workers and after a mid-epoch resume.
    """
    seed, epoch = getattr(index, "seed", None), getattr(index, "epoch", None)
    if seed is None or epoch is None:
        return None
    return torch.Generator().manual_seed(derived_seed(seed, epoch, int(index)))


def sample_unit(dataset: data.Dataset) -> str:
    """What the items of ``dataset`` are, plural: "images" unless the mode says otherwise."""
    return getattr(dataset, "sample_unit", "images")


class BaseDataset(data.Dataset):
    """Base class of the dataset modes (the reference's contract).

    Subclasses implement ``__len__`` and ``__getitem__`` (a dict of tensors and paths) and
    may add flags in ``modify_commandline_options``. When an image cannot be read,
    ``__getitem__`` returns ``self.skip(path, reason)``; the collate function drops it.
    """

    # Set by modes whose __getitem__ reads images through ``prepared``: --cache_images then
    # keeps resized images (see ``prepared``); other modes get the decoded-image cache.
    caches_resized_images = False
    # What the items are, for progress lines ("4/16 patches"): modes whose items are not whole
    # images say so (the volume mode trains on patches).
    sample_unit = "images"
    # Items read from one file, kept next to each other in the shuffled order (the sampler's
    # ``group``): the volume mode's patches of one pair, decoded once for all of them.
    sample_group = 1

    def __init__(self, opt: argparse.Namespace) -> None:
        self.opt = opt
        self.root = opt.dataroot
        self._warned: set = set()
        cache = opt.cache_images and self.caches_resized_images
        self._prepared: Optional[Dict[Hashable, Tuple[torch.Tensor, ...]]] = {} if cache else None

    @staticmethod
    def modify_commandline_options(parser: argparse.ArgumentParser,
                                   is_train: bool) -> argparse.ArgumentParser:
        """Add mode-specific flags or change defaults; returns the parser."""
        return parser

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        raise NotImplementedError

    def input_output_nc(self) -> Tuple[int, int]:
        """Channels of A and B. The dataset applies --direction, so A is always the input."""
        return self.opt.input_nc, self.opt.output_nc

    def transform(self, img: torch.Tensor, params: dict) -> torch.Tensor:
        """Preprocess one image with this run's options and the given crop/flip."""
        return self.transform_for(params)(img)

    def prepared(self, key: Hashable, read: Callable[[], Sequence[torch.Tensor]],
                 load_size: Optional[int] = None) -> Tuple[torch.Tensor, ...]:
        """The images ``read()`` returns, kept in memory after the resize step of
        ``--preprocess`` when ``--cache_images`` is on (``key`` names them, e.g. the path).

        Decoding and resizing are nearly all of a sample's cost (about 16 ms of CPU for a
        1200x600 maps JPEG at load_size 143); the random crop and flip stay per sample. 8-bit
        images are kept as bytes, a quarter of their float size. ``transform`` leaves
        an image already at its resized size unchanged and draws the same crop from it, so a
        sample is identical with or without the cache. Errors of ``read`` pass through and
        nothing is kept for them. ``load_size`` other than ``--load_size`` (CUT's fine-tuning
        epochs) is kept under a key of its own.
        """
        if self._prepared is None:
            return tuple(read())
        images = self._prepared.get(key)
        if images is None:
            images = self._prepared[key] = tuple(self.transform_for(load_size=load_size).resize(img) for img in read())
        return images

    def load_checked(self, path: str, nc: int) -> torch.Tensor:
        """``path`` with ``nc`` channels; an image too small for ``--preprocess crop`` is an error."""
        img = load_image(path, nc)
        self.check_fits(path, (img.shape[2], img.shape[1]))
        return img

    def preload(self) -> int:
        """Fill the ``--cache_images`` cache in this process, before DataLoader workers fork
        (they then share one copy); returns the number of cached entries. Unreadable files
        are left out and skipped as usual when asked for."""
        for index in range(len(self)):
            self[index]
        return len(self._prepared or {})

    def transform_for(self, params: Optional[dict] = None, load_size: Optional[int] = None) -> Transform:
        """This run's preprocessing, with the given crop/flip (and ``load_size``, default ``--load_size``)."""
        opt = self.opt
        return get_transform(opt.preprocess, opt.load_size if load_size is None else load_size, opt.crop_size,
                             params, opt.no_flip, opt.size_multiple)

    def params_for(self, img: torch.Tensor, generator: Optional[torch.Generator],
                   load_size: Optional[int] = None) -> dict:
        opt = self.opt
        size = (img.shape[2], img.shape[1])
        return get_params(opt.preprocess, opt.load_size if load_size is None else load_size, opt.crop_size, size,
                          opt.no_flip, generator)

    def load_size_at(self, index: int) -> int:
        """``--load_size`` for the sample ``index`` (a sampler index knows its epoch); ``--crop_size``
        in the epochs after ``--n_epochs`` when the options say ``decay_jitter`` False: CUT's
        fine-tuning phase (taesungp/contrastive-unpaired-translation data/unaligned_dataset.py:
        ``is_finetuning = current_epoch > n_epochs`` resizes to crop_size, so no resize-and-crop
        jitter while the rate decays)."""
        opt = self.opt
        epoch = getattr(index, "epoch", None)
        if opt.isTrain and epoch is not None and getattr(opt, "decay_jitter", True) is False and epoch > opt.n_epochs:
            return opt.crop_size
        return opt.load_size

    def check_fits(self, path: str, size: Size) -> None:
        """With ``--preprocess crop`` an image smaller than crop_size cannot be used."""
        opt = self.opt
        if opt.preprocess == "crop" and min(size) < opt.crop_size:
            raise UserError(f"{path} is {size[0]}x{size[1]}, smaller than crop_size "
                            f"{opt.crop_size}; use a smaller --crop_size or --preprocess "
                            f"resize_and_crop / scale_width_and_crop")

    def skip(self, path: str, reason: str) -> dict:
        """Warn once per file and return the marker the collate function drops."""
        if path not in self._warned:
            self._warned.add(path)
            print(f"warning: skipping unreadable image {path}: {reason}", file=sys.stderr)
        return {"skipped": path}
