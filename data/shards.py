"""WebDataset tar shards, read by random access: ``<dataroot>/<set>-000000.tar, ...``.

A shard set mirrors one folder of a folder layout (``train``, ``trainA``, ...): each sample
is one file of that folder, its WebDataset key the file's relative path without extension
and its one field the file's extension (``train/sub/1.jpg`` -> ``sub/1.jpg`` in the tar).
``scripts/make_shards.py`` writes them with ``webdataset.ShardWriter``.

The tars are indexed once, from their headers (the samples are grouped by key with
WebDataset's own rule, ``webdataset.tariterators.base_plus_ext``); a file is then a
``ShardMember``: a name like a path, which the codec (``data.codec``) reads by seeking to
its bytes. So the folder modes run unchanged on shards, with the same sampler, the same
per-sample random choices and the same resume, sample by sample.
"""

from __future__ import annotations

import glob
import os
import tarfile
from typing import Dict, List, Tuple

from util.errors import UserError

SHARD_PATTERN = "{name}-*.tar"


class ShardMember(str):
    """One file inside a shard: the string is ``<shard>/<member name>`` (what results and
    warnings name); ``member_bytes()`` reads the file's bytes from the tar."""

    shard: str
    offset: int
    size: int

    def __new__(cls, shard: str, name: str, offset: int, size: int) -> ShardMember:
        obj = super().__new__(cls, f"{shard}/{name}")
        obj.shard, obj.offset, obj.size = shard, offset, size
        return obj

    def __reduce__(self):  # a DataLoader worker gets the location, not a bare string
        return _member, (self.shard, str(self)[len(self.shard) + 1:], self.offset, self.size)

    def member_bytes(self) -> bytes:
        with open(self.shard, "rb") as f:
            f.seek(self.offset)
            return f.read(self.size)


def _member(shard: str, name: str, offset: int, size: int) -> ShardMember:
    return ShardMember(shard, name, offset, size)


def shard_paths(dataroot: str, name: str) -> List[str]:
    """The shards of the set ``name`` in ``dataroot``, in order."""
    return sorted(glob.glob(os.path.join(glob.escape(dataroot), SHARD_PATTERN.format(name=name))))


def index_shard(path: str) -> List[Tuple[str, Dict[str, ShardMember]]]:
    """[(key, {extension: member})] of the samples of one tar, in tar order. WebDataset's
    metadata entries (``__x__``) are left out, as its reader does."""
    from webdataset.tariterators import base_plus_ext  # only when shards are read: the library is large

    samples: List[Tuple[str, Dict[str, ShardMember]]] = []
    try:
        with tarfile.open(path, "r:") as tar:  # headers only: the data is skipped by seeking
            for info in tar:
                name = info.name
                if not info.isreg() or os.path.basename(name).startswith("__"):
                    continue
                key, extension = base_plus_ext(name)
                if key is None:
                    continue
                if not samples or samples[-1][0] != key:
                    samples.append((key, {}))
                samples[-1][1][extension.lower()] = ShardMember(path, name, info.offset_data, info.size)
    except (tarfile.TarError, OSError) as e:
        raise UserError(f"{path} is not a readable tar shard ({e})") from None
    if not samples:
        raise UserError(f"{path} holds no samples (an empty tar)")
    return samples


def shard_files(dataroot: str, name: str, extensions: Tuple[str, ...], made_by: str) -> Dict[str, ShardMember]:
    """{key: the file} of the set ``name``, in shard order: each sample must hold one field
    of ``extensions`` (with their dot, as the folder modes list them). ``made_by``: how to
    make the shards, for the error line when there are none."""
    paths = shard_paths(dataroot, name)
    if not paths:
        raise UserError(f"no shards {os.path.join(dataroot, SHARD_PATTERN.format(name=name))}; {made_by}")
    wanted = tuple(e.lstrip(".") for e in extensions)
    files: Dict[str, ShardMember] = {}
    for path in paths:
        for key, fields in index_shard(path):
            found = [m for ext, m in fields.items() if ext in wanted]
            if len(found) != 1:
                raise UserError(f"sample {key} of {path} has {len(found)} image fields ({', '.join(sorted(fields))}); "
                                f"each sample needs one of {', '.join(wanted)}")
            if key in files:
                raise UserError(f"sample {key} is in {files[key].shard} and in {path}; keys must be unique")
            files[key] = found[0]
    return files
