"""Download a pretrained CycleGAN or pix2pix generator of the reference's authors.

    python scripts/download_model.py horse2zebra --kind cyclegan      # or: bash scripts/download_cyclegan_model.sh horse2zebra
    python scripts/download_model.py facades_label2photo --kind pix2pix

writes ``checkpoints/<name>_pretrained/latest_net_G.pth`` and a ``train_opt.json`` with the
architecture the model was trained with, so ``test.py --model test`` (or ``--model
pix2pix``), ``translate.py`` and ``export.py`` need no architecture flags. The weights go
to a temporary file that is renamed when complete: a failed download leaves nothing
behind. ``--base_url`` (or ``PIX2CYCLE_MODEL_URL``) downloads from a mirror instead.

The weights' SHA-256 goes into ``SHA256SUMS`` beside them. Every load (test.py,
translate.py, export.py, ``Translator``) checks the file against it, and downloading the
model again refuses a file that differs from the recorded one (the folder is kept as it
was): a file changed on disk or on the server is an error, not silently used.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Dict, NamedTuple, Tuple

REPO = Path(__file__).resolve().parents[1]
URL_ENV = "PIX2CYCLE_MODEL_URL"
WEIGHTS = "latest_net_G.pth"


def _dataset_downloader():
    """datasets/download_dataset.py (a script folder, not a package): its fetch and error."""
    spec = importlib.util.spec_from_file_location("pix2cycle_download_dataset", REPO / "datasets" / "download_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_downloads = _dataset_downloader()
DownloadError = _downloads.DownloadError


class Kind(NamedTuple):
    names: Tuple[str, ...]
    base_url: str
    options: dict  # what train_opt.json records: the architecture of every model of this kind


# Architectures as in the reference's docs: CycleGAN generators are resnet_9blocks with
# instance norm and no dropout; pix2pix generators are unet_256 with batch norm and dropout.
KINDS: Dict[str, Kind] = {
    "cyclegan": Kind(
        ("apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra",
         "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh",
         "sat2map", "map2sat", "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label",
         "facades_label2photo", "iphone2dslr_flower"),
        "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/",
        {"model": "test", "model_suffix": "", "netG": "resnet_9blocks", "norm": "instance", "ngf": 64,
         "no_dropout": True, "input_nc": 3, "output_nc": 3, "crop_size": 256}),
    "pix2pix": Kind(
        ("edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night"),
        "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/",
        {"model": "pix2pix", "netG": "unet_256", "norm": "batch", "ngf": 64, "no_dropout": False,
         "input_nc": 3, "output_nc": 3, "crop_size": 256}),
}
# The side of the paired datasets each pix2pix model takes as input (test.py --direction).
PIX2PIX_DIRECTIONS = {"edges2shoes": "AtoB", "sat2map": "AtoB", "map2sat": "BtoA",
                      "facades_label2photo": "BtoA", "day2night": "BtoA"}


def model_url(name: str, kind: str, base_url: str = "") -> str:
    if name not in KINDS[kind].names:
        raise DownloadError(f"unknown {kind} model '{name}'; available: {', '.join(KINDS[kind].names)}")
    base = base_url or os.environ.get(URL_ENV) or KINDS[kind].base_url
    return base.rstrip("/") + "/" + name + ".pth"


def saved_options(name: str, kind: str) -> dict:
    options = dict(KINDS[kind].options, name=f"{name}_pretrained", pretrained=name)
    if kind == "pix2pix":
        options["direction"] = PIX2PIX_DIRECTIONS[name]
    return options


def download_model(name: str, kind: str, checkpoints: Path, base_url: str = "") -> Path:
    """Download model ``name`` into ``checkpoints/<name>_pretrained/``; returns that folder.

    Everything is written in a temporary folder beside it and moved in at the end, so a
    failure leaves neither a partial file nor an empty folder.
    """
    url = model_url(name, kind, base_url)
    target = checkpoints / f"{name}_pretrained"
    with _downloads.staging_folder(checkpoints, name) as work:
        _downloads.fetch(url, work / WEIGHTS, f" (offline? a mirror: --base_url or ${URL_ENV})")
        sums = _downloads.checked_sums(target, {WEIGHTS: work / WEIGHTS}, url)
        _downloads.checksums.write_sums(work, sums)
        (work / "train_opt.json").write_text(json.dumps(saved_options(name, kind), indent=2, sort_keys=True))
        target.mkdir(exist_ok=True)
        for item in ("train_opt.json", _downloads.checksums.SUMS_FILE, WEIGHTS):  # the weights last
            os.replace(work / item, target / item)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Download a pretrained CycleGAN or pix2pix generator.")
    parser.add_argument("name", help="model name, e.g. horse2zebra, style_monet, facades_label2photo")
    parser.add_argument("--kind", choices=sorted(KINDS), required=True, help="cyclegan or pix2pix")
    parser.add_argument("--checkpoints_dir", default="./checkpoints", help="where runs are stored")
    parser.add_argument("--base_url", default="", help=f"download from this server instead (also: ${URL_ENV})")
    args = parser.parse_args(argv)
    try:
        model_url(args.name, args.kind)
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    def download_and_describe() -> str:
        target = download_model(args.name, args.kind, Path(args.checkpoints_dir), args.base_url)
        return (f"model '{args.name}' is in {target}; try:\n"
                f"  python translate.py IMAGES... --name {target.name} --checkpoints_dir {target.parent}")

    return _downloads.report(download_and_describe)


if __name__ == "__main__":
    sys.exit(main())
