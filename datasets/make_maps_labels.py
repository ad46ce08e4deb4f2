"""Label maps and instance maps from the maps tiles, for the label-to-photo models.

    python datasets/make_maps_labels.py --dataroot datasets/maps --out datasets/maps_labels

Each ``<dataroot>/<phase>/N.jpg`` is an A|B pair: the aerial photo on the left, the map
rendering on the right. The rendering has a few flat colours, so every pixel is given the
class of the nearest ``PALETTE`` colour (a "dontcare" class when no colour is within
``--max_distance``: text, icons, JPEG ringing), and a 3x3 mode filter removes the
one-pixel speckle the JPEG leaves. Instance maps are the connected components of each
object class (water, parks, buildings); roads and background are "stuff", one segment each.

The layout written is the one pix2pixHD and SPADE read (``--dataset_mode label``)::

    <out>/<phase>_label/N.png   8-bit class ids 0..5 (CLASSES; 5 = dontcare)
    <out>/<phase>_inst/N.png    16-bit instance ids: class * 1000 + component (1-based)
    <out>/<phase>_img/N.jpg     the photo half, the translation target

``val`` becomes ``test`` (what test.py reads by default); ``--size`` resizes (nearest for
the maps, bicubic for the photo).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
from PIL import Image, ImageFilter

# The classes, in id order; the last one is dontcare (SPADE's --contain_dontcare_label).
CLASSES = ("background", "road", "water", "park", "building", "dontcare")
DONTCARE = CLASSES.index("dontcare")
# Flat colours of the map renderings -> class. Measured on maps/train tiles (the most
# frequent colours after 16-level quantisation): beige land, white and yellow roads, two
# blues of water, the green of parks, the grey of built-up blocks.
PALETTE = (
    ((236, 232, 222), "background"),
    ((242, 240, 233), "background"),
    ((253, 253, 253), "road"),
    ((250, 232, 150), "road"),
    ((181, 208, 247), "water"),
    ((168, 198, 247), "water"),
    ((202, 222, 172), "park"),
    ((216, 216, 216), "building"),
)
OBJECT_CLASSES = ("water", "park", "building")  # one instance per connected component
INSTANCE_BASE = 1000  # pix2pixHD's Cityscapes convention: class * 1000 + instance
MIN_COMPONENT = 16  # smaller components are noise: they keep the class's 0th instance
PHASES = {"train": "train", "val": "test"}


def quantise(rendering: np.ndarray, max_distance: float = 20.0) -> np.ndarray:
    """H x W class ids of an RGB map rendering: the nearest palette colour's class, or
    ``DONTCARE`` farther than ``max_distance`` (Euclidean, in 0..255 RGB) from all of them."""
    colours = np.array([c for c, _ in PALETTE], dtype=np.float32)
    ids = np.array([CLASSES.index(name) for _, name in PALETTE], dtype=np.uint8)
    pixels = rendering.reshape(-1, 1, 3).astype(np.float32)
    distance = np.sqrt(((pixels - colours[None]) ** 2).sum(axis=2))
    nearest = distance.argmin(axis=1)
    labels = ids[nearest]
    labels[distance[np.arange(len(nearest)), nearest] > max_distance] = DONTCARE
    labels = labels.reshape(rendering.shape[:2])
    # JPEG leaves isolated pixels of other classes at every edge: the 3x3 mode removes them.
    return np.asarray(Image.fromarray(labels).filter(ImageFilter.ModeFilter(3)))


def instances(labels: np.ndarray) -> np.ndarray:
    """H x W instance ids (``class * INSTANCE_BASE + k``): connected components (4-neighbour)
    of each object class numbered from 1, components under ``MIN_COMPONENT`` pixels and the
    stuff classes as ``class * INSTANCE_BASE``."""
    from scipy import ndimage

    inst = labels.astype(np.int32) * INSTANCE_BASE
    for name in OBJECT_CLASSES:
        cls = CLASSES.index(name)
        components, n = ndimage.label(labels == cls)
        sizes = np.bincount(components.ravel(), minlength=n + 1)
        k = 0
        for component in range(1, n + 1):
            if sizes[component] >= MIN_COMPONENT and k < INSTANCE_BASE - 1:
                k += 1
                inst[components == component] = cls * INSTANCE_BASE + k
    return inst


def convert_tile(path: Path, size: Optional[int], max_distance: float) -> Tuple[Image.Image, Image.Image, Image.Image]:
    """(photo, label map, instance map) of one A|B tile."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        photo, rendering = im.crop((0, 0, w // 2, h)), im.crop((w // 2, 0, 2 * (w // 2), h))
    labels = quantise(np.asarray(rendering), max_distance)
    inst = instances(labels)
    label_img = Image.fromarray(labels)  # 8-bit
    inst_img = Image.fromarray(inst.astype(np.uint16))  # 16-bit
    if size:
        photo = photo.resize((size, size), Image.BICUBIC)
        # Nearest: a class id or an instance id is never a mix of its neighbours.
        label_img = label_img.resize((size, size), Image.NEAREST)
        inst_img = inst_img.resize((size, size), Image.NEAREST)
    return photo, label_img, inst_img


def convert(dataroot: Path, out: Path, size: Optional[int] = None, limit: Optional[int] = None,
            max_distance: float = 20.0) -> int:
    """Convert the train and val tiles; returns the number written."""
    count = 0
    for source, phase in PHASES.items():
        folder = dataroot / source
        if not folder.is_dir():
            continue
        for kind in ("label", "inst", "img"):
            (out / f"{phase}_{kind}").mkdir(parents=True, exist_ok=True)
        tiles = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        for path in tiles[:limit]:
            try:
                photo, label_img, inst_img = convert_tile(path, size, max_distance)
            except (OSError, ValueError) as e:
                print(f"warning: skipping {path}: {e}", file=sys.stderr)
                continue
            photo.save(out / f"{phase}_img" / f"{path.stem}.jpg", quality=95)
            label_img.save(out / f"{phase}_label" / f"{path.stem}.png")
            inst_img.save(out / f"{phase}_inst" / f"{path.stem}.png")
            count += 1
    return count


def make_demo_labels(root: Path, n_train: int = 4, n_test: int = 2, size: int = 32, seed: int = 0) -> Path:
    """A tiny dataset in the same layout, from synthetic renderings (palette-coloured blocks on
    background, a little noise) through the same quantisation: for tests and the docs' sandbox."""
    rng = np.random.default_rng(seed)
    colours = [c for c, _ in PALETTE]
    for phase, n in (("train", n_train), ("test", n_test)):
        for kind in ("label", "inst", "img"):
            (root / f"{phase}_{kind}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rendering = np.tile(np.array(colours[0], dtype=np.int16), (size, size, 1))
            for _ in range(4):
                x, y = rng.integers(0, size - size // 4, 2)
                w, h = rng.integers(size // 8, size // 2, 2)
                rendering[y:y + h, x:x + w] = colours[rng.integers(2, len(colours))]
            rendering = np.clip(rendering + rng.integers(-3, 4, rendering.shape), 0, 255).astype(np.uint8)
            labels = quantise(rendering)
            photo = np.clip(rendering.astype(np.int16) // 2 + rng.integers(0, 60, rendering.shape), 0, 255)
            Image.fromarray(photo.astype(np.uint8)).save(root / f"{phase}_img" / f"{i}.png")
            Image.fromarray(labels).save(root / f"{phase}_label" / f"{i}.png")
            Image.fromarray(instances(labels).astype(np.uint16)).save(root / f"{phase}_inst" / f"{i}.png")
    return root


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="label and instance maps from the maps tiles' renderings")
    parser.add_argument("--dataroot", required=True, help="the maps dataset (train/ and val/ with A|B tiles)")
    parser.add_argument("--out", required=True, help="where <phase>_label/, <phase>_inst/, <phase>_img/ go")
    parser.add_argument("--size", type=int, default=None, help="resize every map and photo to SIZE x SIZE")
    parser.add_argument("--limit", type=int, default=None, help="at most this many tiles per phase")
    parser.add_argument("--max_distance", type=float, default=20.0,
                        help="farther than this from every palette colour (RGB, 0..255): dontcare")
    args = parser.parse_args(argv)
    dataroot = Path(args.dataroot)
    if not (dataroot / "train").is_dir() and not (dataroot / "val").is_dir():
        print(f"error: {dataroot} holds no train/ or val/ folder of A|B maps tiles", file=sys.stderr)
        return 1
    count = convert(dataroot, Path(args.out), args.size, args.limit, args.max_distance)
    print(f"wrote {count} label maps, instance maps and photos under {args.out}")
    return 0 if count else 1


if __name__ == "__main__":
    sys.exit(main())
