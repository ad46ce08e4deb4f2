"""Tiny trained runs and images for the tests of pix2cycle/, translate.py and export.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import train
from tests.conftest import load_script
from tests.helpers import tiny_args

ONE_STEP = ["--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "1", "--no_html"]


def train_tiny_runs(root: Path) -> Path:
    """Checkpoints folder with ``cyc`` (CycleGAN, resnet_6blocks, instance norm, 32 px) and
    ``p2p`` (pix2pix, unet_128, batch norm, no dropout, 128 px), each trained one step."""
    make = load_script("make_demo_data").make_demo_dataset
    checkpoints = root / "checkpoints"
    unaligned = make(root / "unaligned", "unaligned", n_train=1, n_test=1, size=32, seed=3)
    aligned = make(root / "aligned", "aligned", n_train=1, n_test=1, size=128, seed=4)
    assert train.main(tiny_args("cycle_gan", unaligned, checkpoints, "cyc", *ONE_STEP)) == 0
    assert train.main(tiny_args("pix2pix", aligned, checkpoints, "p2p", "--no_dropout", *ONE_STEP)) == 0
    return checkpoints


def random_image(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A smooth random image (noise would make every network output look alike)."""
    rng = np.random.RandomState(seed)
    channels = 1 if mode == "L" else 3
    small = rng.randint(0, 256, (max(2, height // 8), max(2, width // 8), channels), dtype=np.uint8)
    image = Image.fromarray(small[:, :, 0] if channels == 1 else small).resize((width, height), Image.BICUBIC)
    return image.convert(mode)
