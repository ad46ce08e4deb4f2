"""The options a run saves, and the ones that define its networks.

Below both ``options/`` (which fills a test run's architecture from the saved run) and
``models/`` (which names the options that differ when weights do not fit), so neither
imports the other for them. Plain values only: no torch.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Optional

# Options that define the networks of every model: test.py takes them from the saved run. A
# model adds its own in ``BaseModel.architecture_keys`` (e.g. ``--model test``'s suffix).
ARCHITECTURE_KEYS = ("input_nc", "output_nc", "ngf", "ndf", "netG", "netD", "n_layers_D", "norm",
                     "no_dropout", "init_type", "init_gain", "direction",
                     "normG", "normD", "spectral_norm_G", "spectral_norm_D", "upsample",
                     "attention", "num_D")


def format_options(opt: argparse.Namespace, parser: Optional[argparse.ArgumentParser] = None) -> str:
    lines = ["----------------- Options ---------------"]
    for key, value in sorted(vars(opt).items()):
        lines.append(f"{key:>25}: {value!s:<30}")
    lines.append("----------------- End -------------------")
    return "\n".join(lines)


def save_options(opt: argparse.Namespace, folder: Path, phase: str = "train") -> None:
    """Write ``<phase>_opt.txt`` (for people) and ``<phase>_opt.json`` (for programs)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{phase}_opt.txt").write_text(format_options(opt) + "\n")
    data = {k: (v if v != float("inf") else None) for k, v in vars(opt).items()
            if isinstance(v, (str, int, float, bool, list, type(None)))}
    tmp = folder / f".{phase}_opt.json.tmp"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, folder / f"{phase}_opt.json")


# A model package (export.py --format hub, pix2cycle/hub.py) keeps a run's saved architecture
# options in its config.json, under "options", for the folders that have no train_opt.json.
PACKAGE_CONFIG = "config.json"
PACKAGE_FORMAT = "pix2cycle"


def load_saved_options(folder: Path) -> Optional[dict]:
    """The run's ``train_opt.json``; for a model package, the options of its ``config.json``."""
    path = Path(folder) / "train_opt.json"
    if not path.is_file():
        return _package_options(Path(folder) / PACKAGE_CONFIG)
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _package_options(path: Path) -> Optional[dict]:
    try:
        config = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(config, dict) or config.get("format") != PACKAGE_FORMAT:
        return None
    options = config.get("options")
    return dict(options) if isinstance(options, dict) else None
