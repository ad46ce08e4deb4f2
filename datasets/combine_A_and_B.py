"""Make an aligned (pix2pix) dataset from two folders of corresponding images.

    python datasets/combine_A_and_B.py --fold_A /path/A --fold_B /path/B --fold_AB /path/AB

``fold_A`` and ``fold_B`` hold the same split sub-folders (``train``, ``val``, ``test``...);
each image of ``A/<split>`` is put side by side (A|B) with the image of the same name in
``B/<split>`` and written to ``AB/<split>``. With ``--use_AB`` the files are named
``0001_A.jpg`` / ``0001_B.jpg`` and the result ``0001.jpg``. Flags as in the reference.
A missing partner or a size mismatch is reported and that pair skipped.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import List, Optional, Tuple

from PIL import Image

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

Job = Tuple[str, str, str]  # path_A, path_B, path_AB


def combine_pair(path_A: str, path_B: str, path_AB: str) -> Optional[str]:
    """Write A|B to ``path_AB``; returns a warning instead when the pair cannot be combined."""
    try:
        with Image.open(path_A) as im_A, Image.open(path_B) as im_B:
            if im_A.size != im_B.size:
                return (f"skipping {path_A}: size {im_A.size[0]}x{im_A.size[1]} differs from "
                        f"{path_B} ({im_B.size[0]}x{im_B.size[1]})")
            mode = im_A.mode if im_A.mode == im_B.mode else "RGB"
            w, h = im_A.size
            im_AB = Image.new(mode, (2 * w, h))
            im_AB.paste(im_A.convert(mode), (0, 0))
            im_AB.paste(im_B.convert(mode), (w, 0))
        # JPEG at quality 95, like the reference's cv2.imwrite; other formats ignore it.
        im_AB.save(path_AB, quality=95)
    except (OSError, ValueError, SyntaxError) as e:
        return f"skipping {path_A}: {e}"
    return None


def find_pairs(fold_A: Path, fold_B: Path, fold_AB: Path, num_imgs: int,
               use_AB: bool) -> Tuple[List[Job], List[str]]:
    """The (A, B, AB) paths to combine for every split, and warnings for missing partners."""
    jobs, warnings = [], []
    for split in sorted(p.name for p in fold_A.iterdir() if p.is_dir()):
        names = sorted(n for n in os.listdir(fold_A / split) if n.lower().endswith(IMG_EXTENSIONS))
        if use_AB:
            names = [n for n in names if "_A." in n]
        (fold_AB / split).mkdir(parents=True, exist_ok=True)
        for name_A in names[:num_imgs]:
            name_B = name_A.replace("_A.", "_B.") if use_AB else name_A
            name_AB = name_A.replace("_A.", ".") if use_AB else name_A
            path_B = fold_B / split / name_B
            if not path_B.is_file():
                warnings.append(f"skipping {fold_A / split / name_A}: no {path_B}")
                continue
            jobs.append((str(fold_A / split / name_A), str(path_B), str(fold_AB / split / name_AB)))
    return jobs, warnings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="create image pairs A|B")
    parser.add_argument("--fold_A", required=True, help="input directory for image A")
    parser.add_argument("--fold_B", required=True, help="input directory for image B")
    parser.add_argument("--fold_AB", required=True, help="output directory")
    parser.add_argument("--num_imgs", type=int, default=1000000, help="number of images per split")
    parser.add_argument("--use_AB", action="store_true", help="if true: (0001_A, 0001_B) to (0001_AB)")
    parser.add_argument("--no_multiprocessing", action="store_true",
                        help="combine in this process only")
    args = parser.parse_args(argv)
    fold_A, fold_B, fold_AB = Path(args.fold_A), Path(args.fold_B), Path(args.fold_AB)
    for folder in (fold_A, fold_B):
        if not folder.is_dir():
            print(f"error: {folder} is not a directory", file=sys.stderr)
            return 1
    jobs, warnings = find_pairs(fold_A, fold_B, fold_AB, args.num_imgs, args.use_AB)
    if args.no_multiprocessing or len(jobs) < 16:
        results = [combine_pair(*job) for job in jobs]
    else:
        with ProcessPoolExecutor() as pool:
            results = list(pool.map(combine_pair, *zip(*jobs), chunksize=16))
    warnings += [r for r in results if r]
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    done = sum(r is None for r in results)
    print(f"combined {done} pairs into {fold_AB}" + (f"; skipped {len(warnings)}" if warnings else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
