"""Write a folder dataset as WebDataset tar shards, for ``--dataset_mode webdataset``.

    python scripts/make_shards.py DATAROOT OUT --shard_size 1000 --phase train test

For each ``--phase`` P, the folders the folder modes read become shard sets of at most
``--shard_size`` samples (``data.shards``): ``DATAROOT/PA/`` and ``PB/`` (unaligned or
paired data) -> ``OUT/PA-000000.tar ...`` and ``OUT/PB-...``; ``DATAROOT/P/`` (aligned A|B
images) -> ``OUT/P-...``; images directly in ``DATAROOT`` (single) -> ``OUT/P-...``. A
sample is one file, its bytes as they are (any type the codec reads: 8/16-bit PNG, TIFF,
``.npy``, JPEG), keyed by its relative path without extension, in the folder modes' order.
WebDataset keys end at a name's first dot, so a dot inside a file's stem becomes ``_``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the checkout's packages
from data.codec import IMAGE_ARRAY_EXTENSIONS, IMG_EXTENSIONS, stem_of, suffix_of  # noqa: E402
from data.image_folder import is_image_file  # noqa: E402
from util.errors import UserError, report_user_error  # noqa: E402


def list_folder(folder: str, extensions) -> List[str]:
    """The files the folder modes read from ``folder``: recursive, sorted by path."""
    paths = [os.path.join(root, name) for root, dirs, names in os.walk(folder, followlinks=True)
             for name in names if name.lower().endswith(extensions)]
    return sorted(paths)


def sample_key(folder: str, path: str) -> str:
    relative = os.path.relpath(path, folder)
    return os.path.join(os.path.dirname(relative), stem_of(relative).replace(".", "_"))


def folders_of(dataroot: str, phase: str) -> Dict[str, tuple]:
    """{shard set name: (folder, extensions)} of ``phase``, by the layout ``dataroot`` has."""
    pair = [os.path.join(dataroot, phase + side) for side in "AB"]
    if all(os.path.isdir(p) for p in pair):
        return {phase + side: (p, IMAGE_ARRAY_EXTENSIONS) for side, p in zip("AB", pair)}
    if os.path.isdir(os.path.join(dataroot, phase)):
        return {phase: (os.path.join(dataroot, phase), IMG_EXTENSIONS)}
    if os.path.isdir(dataroot) and any(is_image_file(f) for f in os.listdir(dataroot)):
        return {phase: (dataroot, IMG_EXTENSIONS)}
    raise UserError(f"{dataroot} has no {phase}A/ + {phase}B/, no {phase}/ and no images of its own: "
                    f"nothing to shard for --phase {phase}")


def write_set(folder: str, extensions, pattern: str, shard_size: int) -> int:
    """Write ``folder``'s files as shards named by ``pattern`` (``%06d``); returns the count."""
    import webdataset as wds

    paths = list_folder(folder, extensions)
    if not paths:
        raise UserError(f"no files to shard in {folder}")
    keys: Dict[str, str] = {}
    with wds.ShardWriter(pattern, maxcount=shard_size, verbose=0) as sink:
        for path in paths:
            key = sample_key(folder, path)
            if key in keys:
                raise UserError(f"{keys[key]} and {path} both give the sample key {key}; rename one")
            keys[key] = path
            sink.write({"__key__": key, suffix_of(path).lstrip("."): Path(path).read_bytes()})
    return len(paths)


def make_shards(dataroot: str, out: str, shard_size: int, phases: Sequence[str] = ("train",)) -> Dict[str, int]:
    """{shard set: samples} written to ``out``."""
    if shard_size < 1:
        raise UserError(f"--shard_size {shard_size} must be at least 1")
    os.makedirs(out, exist_ok=True)
    written = {}
    for phase in phases:
        for name, (folder, extensions) in folders_of(dataroot, phase).items():
            written[name] = write_set(folder, extensions, os.path.join(out, f"{name}-%06d.tar"), shard_size)
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataroot", help="a folder dataset (aligned, unaligned, paired or single layout)")
    parser.add_argument("out", help="where the shards go")
    parser.add_argument("--shard_size", type=int, default=1000, help="samples per shard")
    parser.add_argument("--phase", nargs="+", default=["train"], help="the splits to shard, e.g. train test")
    args = parser.parse_args(argv)
    try:
        written = make_shards(args.dataroot, args.out, args.shard_size, args.phase)
    except UserError as e:
        return report_user_error(e)
    for name, count in written.items():
        print(f"{name}: {count} samples in {-(-count // args.shard_size)} shard(s) under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
