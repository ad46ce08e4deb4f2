"""SHA-256 records of downloaded files: ``SHA256SUMS`` in the folder they went to.

The download scripts (scripts/download_model.py, datasets/download_dataset.py) write one
line per file they fetched, in ``sha256sum``'s format (``<hex>  <name>``, so
``sha256sum -c SHA256SUMS`` checks them by hand too). Every later load of a listed weight
file (``util.weights.load_weights``) and every download into the same folder compares the
file with its record; a file that changed is refused. The record is what was downloaded
first: a server that later serves other bytes under the same name is refused too.

Only the standard library: the download scripts load this file without importing torch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, Optional, Union

SUMS_FILE = "SHA256SUMS"


class ChecksumError(Exception):
    """A file differs from the SHA-256 recorded when it was downloaded."""


def sha256_of(path: Union[str, Path]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_sums(folder: Union[str, Path]) -> Dict[str, str]:
    """``{file name: sha256}`` of ``folder/SHA256SUMS``; empty when there is none."""
    path = Path(folder) / SUMS_FILE
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text().splitlines():
        digest, _, name = line.strip().partition(" ")
        if digest and name:
            sums[name.strip().lstrip("*")] = digest.lower()
    return sums


def write_sums(folder: Union[str, Path], sums: Dict[str, str]) -> None:
    """Write ``sums`` as ``folder/SHA256SUMS`` (sorted by name)."""
    text = "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items()))
    (Path(folder) / SUMS_FILE).write_text(text)


def recorded_sha256(path: Union[str, Path]) -> Optional[str]:
    """The SHA-256 that ``SHA256SUMS`` beside ``path`` records for it, or None."""
    path = Path(path)
    return read_sums(path.parent).get(path.name)


def verify_recorded(path: Union[str, Path], hint: str = "") -> None:
    """Raise ``ChecksumError`` when ``path`` is listed in the ``SHA256SUMS`` beside it and
    its bytes no longer match; a file not listed (a run's own weights) passes."""
    expected = recorded_sha256(path)
    if expected is None:
        return
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(f"{path} changed since it was downloaded: its SHA-256 is {actual[:16]}..., "
                            f"{Path(path).parent / SUMS_FILE} records {expected[:16]}...; refusing it{hint}")
