"""Make a small synthetic dataset for trying pix2pix and CycleGAN on a CPU in minutes.

Each scene is a few random shapes of six classes. A is the flat-colour label map (like
facades labels); B is a "photo" of the same scene: every class has its own colour and
texture, under a light gradient, with sensor noise. The mapping A -> B is learnable and
quick to see.

    python datasets/make_demo_data.py --out datasets/demo            # both layouts
    python datasets/make_demo_data.py --out datasets/demo --kind aligned --size 64

Aligned layout: ``train/ val/ test/`` with A|B side by side. Unaligned layout:
``trainA/ trainB/ testA/ testB/`` from independent scenes. Both can share one root.
Output is deterministic for a given ``--seed``. Files are written by the project's one image
codec (``data/codec.py``).
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Callable, Dict, Tuple, Union

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the checkout's packages
from data.codec import write_array  # noqa: E402

# Label colours (A) per class; class 0 is the background.
LABEL_COLOURS = np.array([[0, 0, 170], [255, 85, 0], [0, 170, 255], [170, 255, 85],
                          [255, 255, 0], [170, 0, 255]], dtype=np.float32) / 255.0
# Base colours of the "photo" (B) per class.
PHOTO_COLOURS = np.array([[0.55, 0.62, 0.70], [0.60, 0.30, 0.20], [0.25, 0.45, 0.20],
                          [0.80, 0.78, 0.70], [0.30, 0.30, 0.35], [0.70, 0.55, 0.25]],
                         dtype=np.float32)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    coarse = rng.random((cells, cells), dtype=np.float32)
    img = Image.fromarray(coarse).resize((size, size), Image.BILINEAR)
    return np.asarray(img)


# Texture per class: (rng, y, x, size) -> brightness modulation around 1.
TEXTURES: Dict[int, Callable[[np.random.Generator, np.ndarray, np.ndarray, int], np.ndarray]] = {
    0: lambda rng, y, x, s: 1.0 + 0.15 * (_smooth_noise(rng, s, 4) - 0.5),        # sky/wall
    1: lambda rng, y, x, s: 1.0 - 0.4 * ((y % 6 == 0) | ((x + 6 * (y // 6 % 2)) % 12 == 0)),  # bricks
    2: lambda rng, y, x, s: 0.8 + 0.5 * _smooth_noise(rng, s, 16),                # foliage
    3: lambda rng, y, x, s: 1.0 + 0.1 * np.sin(x / 2.0),                          # stripes
    4: lambda rng, y, x, s: 1.0 - 0.3 * (((x // 8) + (y // 8)) % 2),              # checks
    5: lambda rng, y, x, s: 1.0 - 0.3 * ((x % 6 < 2) & (y % 6 < 2)),              # dots
}


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> np.ndarray:
    return np.mgrid[0:size, 0:size].astype(np.float32)


def random_scene(rng: np.random.Generator, size: int) -> np.ndarray:
    """An ``size x size`` int map of class ids: background plus 3 to 7 shapes."""
    y, x = _grid(size)
    classes = np.zeros((size, size), dtype=np.int64)
    for _ in range(rng.integers(3, 8)):
        cls = rng.integers(1, len(LABEL_COLOURS))
        cx, cy = rng.uniform(0, size, 2)
        rx, ry = rng.uniform(size * 0.08, size * 0.3, 2)
        if rng.random() < 0.5:
            mask = (np.abs(x - cx) < rx) & (np.abs(y - cy) < ry)
        else:
            mask = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1.0
        classes[mask] = cls
    return classes


def render_label(classes: np.ndarray) -> np.ndarray:
    return LABEL_COLOURS[classes]


def render_photo(rng: np.random.Generator, classes: np.ndarray) -> np.ndarray:
    """The scene as a textured, lit, noisy RGB image in [0, 1]."""
    size = classes.shape[0]
    y, x = _grid(size)
    shade = np.ones((size, size), dtype=np.float32)
    for cls, texture in TEXTURES.items():
        mask = classes == cls
        if mask.any():
            shade[mask] = np.asarray(texture(rng, y, x, size), dtype=np.float32)[mask]
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.85 + 0.3 * ((np.cos(angle) * x + np.sin(angle) * y) / size)
    photo = PHOTO_COLOURS[classes] * (shade * light)[:, :, None]
    photo += 0.02 * rng.standard_normal(photo.shape, dtype=np.float32)
    return np.clip(photo, 0.0, 1.0)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.round(img * 255.0).astype(np.uint8)


def _pair(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, np.ndarray]:
    classes = random_scene(rng, size)
    return _to_uint8(render_label(classes)), _to_uint8(render_photo(rng, classes))


def _save(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_array(array.transpose(2, 0, 1), path)


def make_demo_dataset(root: Union[str, Path], kind: str = "aligned", n_train: int = 64,
                      n_test: int = 16, size: int = 128, seed: int = 0) -> Path:
    """Write a demo dataset of ``kind`` ("aligned" or "unaligned") under ``root``.

    aligned: ``train/`` (n_train), ``val/`` and ``test/`` (n_test each), A|B PNGs of
    ``2*size x size``. unaligned: ``trainA/ trainB/`` (n_train) and ``testA/ testB/``
    (n_test), ``size x size`` PNGs, A and B from different scenes. Returns ``root``.
    """
    if kind not in ("aligned", "unaligned"):
        raise ValueError(f"kind must be 'aligned' or 'unaligned', not {kind!r}")
    root = Path(root)
    # Separate streams per kind, so making one layout does not change the other.
    rng = np.random.default_rng([seed, 0 if kind == "aligned" else 1])
    splits = {"train": n_train, "val": n_test, "test": n_test}
    for split, count in splits.items():
        if kind == "unaligned" and split == "val":
            continue
        for i in range(count):
            name = f"{i + 1:04d}.png"
            if kind == "aligned":
                label, photo = _pair(rng, size)
                _save(np.concatenate([label, photo], axis=1), root / split / name)
            else:
                # A and B come from two different scenes, as in unpaired data.
                _save(_to_uint8(render_label(random_scene(rng, size))), root / f"{split}A" / name)
                _save(_to_uint8(render_photo(rng, random_scene(rng, size))), root / f"{split}B" / name)
    return root


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="datasets/demo", help="output root folder")
    parser.add_argument("--kind", choices=("aligned", "unaligned", "both"), default="both")
    parser.add_argument("--size", type=int, default=128, help="side of one image (pixels)")
    parser.add_argument("--n_train", type=int, default=64)
    parser.add_argument("--n_test", type=int, default=16, help="images in val/ and test/")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.size < 8:
        print(f"error: --size {args.size} is too small; use 8 or more", file=sys.stderr)
        return 2
    kinds = ("aligned", "unaligned") if args.kind == "both" else (args.kind,)
    for kind in kinds:
        make_demo_dataset(args.out, kind, args.n_train, args.n_test, args.size, args.seed)
    print(f"wrote {' and '.join(kinds)} demo data to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
