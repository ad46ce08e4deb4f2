#!/usr/bin/env python
"""Lay out an unaligned (CycleGAN) dataset as one folder per domain, for --dataset_mode multidomain.

    python datasets/make_multidomain.py --dataroot ../shared/datasets/maps_unaligned \\
        --out ./datasets/maps_domains --names photo,map

``<dataroot>/<split>A`` becomes ``<out>/<split>/<first name>``, ``<split>B`` ``<out>/<split>/<second
name>``, for every split found (train, val, test). The folders are symbolic links to the
originals (nothing is copied) unless ``--copy``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def make_multidomain(dataroot: Path, out: Path, names=("A", "B"), copy: bool = False) -> Path:
    """The layout in ``out``; returns ``out``. Refuses a dataroot without <split>A/<split>B folders."""
    dataroot, out = Path(dataroot).resolve(), Path(out)
    splits = sorted(p.name[:-1] for p in dataroot.glob("*A") if p.is_dir() and (dataroot / f"{p.name[:-1]}B").is_dir())
    if not splits:
        raise SystemExit(f"error: no <split>A and <split>B folders in {dataroot}")
    for split in splits:
        for side, name in zip("AB", names):
            target = out / split / name
            if target.exists() or target.is_symlink():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = dataroot / f"{split}{side}"
            if copy:
                shutil.copytree(source, target)
            else:
                os.symlink(source, target, target_is_directory=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataroot", required=True, help="a folder with trainA/ trainB/ (and val, test)")
    p.add_argument("--out", required=True)
    p.add_argument("--names", default="A,B", help="the two domains' folder names")
    p.add_argument("--copy", action="store_true", help="copy the images instead of linking the folders")
    args = p.parse_args(argv)
    names = args.names.split(",")
    if len(names) != 2 or len(set(names)) != 2 or not all(names):
        raise SystemExit(f"error: --names takes two different names separated by a comma, not '{args.names}'")
    out = make_multidomain(Path(args.dataroot), Path(args.out), names, args.copy)
    print(f"wrote {out}: " + ", ".join(sorted(str(p.relative_to(out)) for p in out.glob("*/*"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
