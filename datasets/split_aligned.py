"""Split an aligned (A|B) dataset into the unaligned (CycleGAN) layout.

    python datasets/split_aligned.py --dataroot datasets/maps --out datasets/maps_split

Every ``<dataroot>/<phase>/NAME`` becomes ``<out>/<phase>A/NAME`` (left half) and
``<out>/<phase>B/NAME`` (right half), for each phase folder (or those given with
``--phases``). An odd width loses its last column, as in the aligned loader.
``--pair_names`` writes ``NAME_A.ext`` / ``NAME_B.ext`` instead, the names by which an
evaluation knows the two halves for ground-truth pairs (psnr, ssim, l1 of CycleGAN, CUT).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from PIL import Image

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def split_image(path: Path, out_A: Path, out_B: Path, pair_names: bool = False) -> Optional[str]:
    """Write the halves of ``path``; returns a warning instead when it cannot be split."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w < 2:
                return f"skipping {path}: width {w} cannot hold an A|B pair"
            half = w // 2
            left, right = im.crop((0, 0, half, h)), im.crop((half, 0, 2 * half, h))
        name_A, name_B = ((f"{path.stem}_A{path.suffix}", f"{path.stem}_B{path.suffix}") if pair_names
                          else (path.name, path.name))
        left.save(out_A / name_A, quality=95)
        right.save(out_B / name_B, quality=95)
    except (OSError, ValueError, SyntaxError) as e:
        return f"skipping {path}: {e}"
    return None


def split_dataset(dataroot: Path, out: Path, phases: Optional[List[str]] = None, pair_names: bool = False) -> int:
    """Split every image of each phase folder; returns the number of images split."""
    if phases is None:
        phases = sorted(p.name for p in dataroot.iterdir() if p.is_dir())
    count = 0
    for phase in phases:
        folder = dataroot / phase
        if not folder.is_dir():
            print(f"warning: no folder {folder}", file=sys.stderr)
            continue
        out_A, out_B = out / f"{phase}A", out / f"{phase}B"
        out_A.mkdir(parents=True, exist_ok=True)
        out_B.mkdir(parents=True, exist_ok=True)
        for path in sorted(folder.iterdir()):
            if not path.name.lower().endswith(IMG_EXTENSIONS):
                continue
            warning = split_image(path, out_A, out_B, pair_names)
            if warning:
                print(f"warning: {warning}", file=sys.stderr)
            else:
                count += 1
    return count


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="split A|B images into <phase>A and <phase>B")
    parser.add_argument("--dataroot", required=True, help="aligned dataset root (holds train/ ...)")
    parser.add_argument("--out", required=True, help="output root for trainA/ trainB/ ...")
    parser.add_argument("--phases", nargs="*", default=None,
                        help="phase folders to split (default: every sub-folder)")
    parser.add_argument("--pair_names", action="store_true",
                        help="name the halves NAME_A.ext and NAME_B.ext, so evaluations pair them")
    args = parser.parse_args(argv)
    dataroot = Path(args.dataroot)
    if not dataroot.is_dir():
        print(f"error: {dataroot} is not a directory; expected <dataroot>/<phase>/ with A|B images",
              file=sys.stderr)
        return 1
    count = split_dataset(dataroot, Path(args.out), args.phases, args.pair_names)
    print(f"split {count} images into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
