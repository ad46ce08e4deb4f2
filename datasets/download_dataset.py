"""Download one of the public pix2pix or CycleGAN datasets and unpack it.

    python datasets/download_dataset.py facades                  # -> datasets/facades/
    python datasets/download_dataset.py horse2zebra --root data/
    python datasets/download_dataset.py maps --kind cyclegan     # maps: pix2pix by default

pix2pix sets (aligned, ``train/ val/ test/``) come as ``.tar.gz``, CycleGAN sets
(unaligned, ``trainA/ trainB/ testA/ testB/``) as ``.zip``, from the servers the reference
uses. Set ``PIX2CYCLE_DATASET_URL`` to download from a mirror instead (the archive name is
appended to it). The archive's SHA-256 is recorded in ``<dataset>/SHA256SUMS``; downloading
the same dataset again refuses an archive that differs from the recorded one. Only the
standard library is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, Dict, Iterator, Tuple

PIX2PIX_DATASETS = ("facades", "cityscapes", "night2day", "edges2handbags", "edges2shoes", "maps")
CYCLEGAN_DATASETS = ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo",
                     "cezanne2photo", "ukiyoe2photo", "vangogh2photo", "maps", "cityscapes",
                     "facades", "iphone2dslr_flower", "ae_photos", "mini", "mini_pix2pix",
                     "grumpifycat")

# kind -> (names, default URL base, archive suffix)
KINDS: Dict[str, Tuple[Tuple[str, ...], str, str]] = {
    "pix2pix": (PIX2PIX_DATASETS, "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/", ".tar.gz"),
    "cyclegan": (CYCLEGAN_DATASETS, "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/", ".zip"),
}
URL_ENV = "PIX2CYCLE_DATASET_URL"
TIMEOUT_S = 30


class DownloadError(Exception):
    """A problem reported to the user as one line."""


def _load_checksums():
    """util/checksums.py, loaded from its file: the standard library only, no torch."""
    path = Path(__file__).resolve().parents[1] / "util" / "checksums.py"
    spec = importlib.util.spec_from_file_location("pix2cycle_checksums", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checksums = _load_checksums()


def checked_sums(target: Path, fetched: Dict[str, Path], url: str) -> Dict[str, str]:
    """The SHA256SUMS of ``target`` with the files just ``fetched`` (``{name: path}``) in it.

    A name that ``target`` already records with another SHA-256 is a ``DownloadError``: the
    server now sends other bytes than it did the first time, and nothing is replaced.
    """
    sums = checksums.read_sums(target)
    for name, path in fetched.items():
        digest = checksums.sha256_of(path)
        recorded = sums.get(name)
        if recorded is not None and recorded != digest:
            raise DownloadError(f"{url} is not the file downloaded before: its SHA-256 is {digest[:16]}..., "
                                f"{target / checksums.SUMS_FILE} records {recorded[:16]}...; {target} is kept as "
                                f"it was (delete it to take the new file)")
        sums[name] = digest
    return sums


def resolve_kind(name: str, kind: str) -> str:
    """The kind to download ``name`` as; "auto" prefers pix2pix for names in both lists."""
    if kind != "auto":
        if name not in KINDS[kind][0]:
            raise DownloadError(f"unknown {kind} dataset '{name}'; available: "
                                f"{', '.join(KINDS[kind][0])}")
        return kind
    kinds = [k for k, (names, _, _) in KINDS.items() if name in names]
    if not kinds:
        raise DownloadError(f"unknown dataset '{name}'; pix2pix: {', '.join(PIX2PIX_DATASETS)}; "
                            f"cyclegan: {', '.join(CYCLEGAN_DATASETS)}")
    if len(kinds) > 1:
        # As the reference's pix2pix script: facades, maps, cityscapes mean the paired sets.
        print(f"note: '{name}' is also a CycleGAN set; add --kind cyclegan for that one",
              file=sys.stderr)
    return kinds[0]


def dataset_url(name: str, kind: str) -> str:
    _, base, suffix = KINDS[kind]
    base = os.environ.get(URL_ENV) or base
    return base.rstrip("/") + "/" + name + suffix


def _fetch(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        # Said once the server answered: offline, the error is the only line.
        print(f"downloading {url}" + (f" ({total / 1e6:.0f} MB)" if total else ""), file=sys.stderr)
        done = 0
        while chunk := response.read(1 << 20):
            out.write(chunk)
            done += len(chunk)
            if total and sys.stderr.isatty():
                print(f"\r{done / 1e6:.0f} / {total / 1e6:.0f} MB", end="", file=sys.stderr)
    if total and sys.stderr.isatty():
        print(file=sys.stderr)
    if total and done != total:
        raise OSError(f"connection closed after {done} of {total} bytes")


def _unpack(archive: Path, dest: Path) -> None:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)  # zipfile drops absolute paths and ".." itself
    else:
        with tarfile.open(archive) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(dest, filter="data")  # refuses links and paths out of dest
                return
            for member in tf.getmembers():  # older Pythons: check the paths by hand
                if member.name.startswith(("/", "\\")) or ".." in Path(member.name).parts:
                    raise tarfile.TarError(f"unsafe path in archive: {member.name}")
            tf.extractall(dest)


def fetch(url: str, dest: Path, hint: str = "") -> None:
    """Download ``url`` to ``dest``; any failure (offline, HTTP error, cut short) is a
    ``DownloadError`` of one line, ending with ``hint``."""
    try:
        _fetch(url, dest)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = f"HTTP {e.code} {e.reason}" if isinstance(e, urllib.error.HTTPError) else \
            getattr(e, "reason", None) or e
        raise DownloadError(f"cannot download {url}: {reason}{hint}") from e


@contextlib.contextmanager
def staging_folder(root: Path, name: str) -> Iterator[Path]:
    """A temporary folder inside ``root`` for one download, removed afterwards; when the
    download fails, ``root`` goes too if this created it. Nothing partial is left behind."""
    new_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-download-", dir=root))
    ok = False
    try:
        yield work
        ok = True
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if new_root and not ok:
            shutil.rmtree(root, ignore_errors=True)


def report(download_and_describe: Callable[[], str]) -> int:
    """Run a download; print what it returns, or its error as one line (exit code 1)."""
    try:
        print(download_and_describe())
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: download interrupted; nothing was kept", file=sys.stderr)
        return 1
    return 0


def download(name: str, root: Path, kind: str = "auto") -> Path:
    """Download and unpack ``name`` into ``root``; returns ``root / name``.

    Works in a temporary folder inside ``root`` that is removed on any failure, so no
    partial archive or half-unpacked dataset is left behind.
    """
    kind = resolve_kind(name, kind)
    url = dataset_url(name, kind)
    target = root / name
    with staging_folder(root, name) as work:
        archive = work / url.rsplit("/", 1)[-1]
        fetch(url, archive, f"; download it by hand from {url} and unpack it into {root}/")
        sums = checked_sums(target, {archive.name: archive}, url)
        unpacked = work / "unpacked"
        try:
            _unpack(archive, unpacked)
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as e:
            raise DownloadError(f"cannot unpack {archive.name}: {e}") from e
        # Archives hold a top folder named like the dataset; merge it into the target.
        source = unpacked / name if (unpacked / name).is_dir() else unpacked
        target.mkdir(exist_ok=True)
        for item in source.iterdir():
            if not (target / item.name).exists():
                shutil.move(str(item), str(target / item.name))
        checksums.write_sums(target, sums)  # of the archive, checked again when it is downloaded again
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Download a pix2pix or CycleGAN dataset.")
    parser.add_argument("name", help="dataset name, e.g. facades, horse2zebra")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent),
                        help="folder to unpack into (default: this datasets/ folder)")
    parser.add_argument("--kind", choices=("auto", *KINDS), default="auto",
                        help="pix2pix (aligned .tar.gz) or cyclegan (unaligned .zip)")
    args = parser.parse_args(argv)
    return report(lambda: f"dataset '{args.name}' is in {download(args.name, Path(args.root), args.kind)}")

if __name__ == "__main__":
    sys.exit(main())
