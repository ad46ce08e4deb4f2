"""Make small synthetic scientific data: multi-channel 16-bit tiles and volumes.

    python datasets/make_scientific_demo.py --out datasets/scientific_demo
    # -> bands/   trainA/ trainB/ testA/ testB/: 5-channel 16-bit TIFF tiles, B a mix of A's bands
    #    volumes/ trainA/ trainB/ testA/ testB/: 40x48x36 uint16 NIfTI volumes, B an inverted A

The values are smooth random waves, so the mappings are quick to learn. Output is
deterministic for a given ``--seed``. Needs numpy, tifffile and (for NIfTI) nibabel.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the checkout's packages
from data.codec import write_array, write_volume  # noqa: E402


def smooth_field(rng: np.random.Generator, shape: Tuple[int, ...], channels: int) -> np.ndarray:
    """Random smooth values in [0, 1]: a few low-frequency waves per channel."""
    grids = np.meshgrid(*[np.linspace(0.0, 1.0, s) for s in shape], indexing="ij")
    out = np.empty((channels,) + tuple(shape))
    for c in range(channels):
        phase = sum(g * rng.uniform(1.0, 4.0) for g in grids) + rng.uniform(0, 6.3)
        out[c] = 0.5 + 0.5 * np.sin(phase)
    return out


def make_multichannel_set(root: Path, input_nc: int = 5, output_nc: int = 2, size: int = 32,
                          n_train: int = 3, n_test: int = 2, seed: int = 0) -> Path:
    """``trainA/ trainB/ testA/ testB/``: ``input_nc``-channel 16-bit TIFFs (A, values
    1000..41000) paired with ``output_nc``-channel 16-bit TIFFs (B, a mix of A's channels)."""
    rng = np.random.default_rng(seed)
    for phase, count in (("train", n_train), ("test", n_test)):
        for k in range(count):
            a = smooth_field(rng, (size, size), input_nc)
            b = np.stack([a[c % input_nc] * 0.7 + a[(c + 1) % input_nc] * 0.3 for c in range(output_nc)])
            for side, array in (("A", a), ("B", b)):
                folder = Path(root) / f"{phase}{side}"
                folder.mkdir(parents=True, exist_ok=True)
                write_array((1000 + array * 40000).astype(np.uint16), folder / f"tile{k}.tif")
    return Path(root)


def make_volume_set(root: Path, shape: Tuple[int, int, int] = (40, 48, 36), n_train: int = 2, n_test: int = 1,
                    fmt: str = ".nii.gz", seed: int = 0) -> Path:
    """``trainA/ trainB/ testA/ testB/`` of uint16 volumes of ``shape`` in format ``fmt``;
    B is a brighter, inverted A. NIfTI files get a non-trivial affine."""
    rng = np.random.default_rng(seed)
    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    affine[:3, 3] = (-10.0, 5.0, 30.0)
    for phase, count in (("train", n_train), ("test", n_test)):
        for k in range(count):
            a = smooth_field(rng, shape, 1)
            for side, array in (("A", a), ("B", 1.0 - a ** 2)):
                folder = Path(root) / f"{phase}{side}"
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"vol{k}{fmt}"
                write_volume((array * 3000).astype(np.uint16), path, affine=affine)
    return Path(root)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="datasets/scientific_demo", help="output root folder")
    parser.add_argument("--format", default=".nii.gz", choices=(".nii.gz", ".nii", ".npy"), help="volume format")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    make_multichannel_set(out / "bands", input_nc=5, output_nc=5, size=128, n_train=16, n_test=4, seed=args.seed)
    make_volume_set(out / "volumes", shape=(40, 48, 36), n_train=4, n_test=2, fmt=args.format, seed=args.seed)
    print(f"wrote 5-channel 16-bit tiles to {out / 'bands'} and volumes to {out / 'volumes'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
