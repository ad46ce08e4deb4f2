"""A model package in the Hugging Face Hub's layout: ``config.json``, ``model.safetensors``,
``README.md`` (the model card) and a few sample images, nothing that needs unpickling.

``export.py --format hub --out DIR`` writes one from a run (``write_package``);
``Translator.from_pretrained(DIR or HUB_ID)`` loads it (``resolve_package`` finds a Hub id
through ``huggingface_hub.snapshot_download``, which reads the local cache when offline);
``export.py ... --push_to_hub USER/NAME`` uploads the folder with ``huggingface_hub``'s own
``upload_folder`` (``push_package``).

The generator is rebuilt the way ``Translator.from_checkpoint`` rebuilds a run's: from the
run's saved architecture options, kept in ``config.json`` under ``options`` (what
``util.saved_options.load_saved_options`` reads where there is no ``train_opt.json``), so
a package translates bit for bit as the run it came from.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import List, Optional, Union

from pix2cycle.model_card import CARD_FILE, SAMPLES_DIR, RunRecord, write_card
from util.errors import UserError
from util.saved_options import PACKAGE_CONFIG, PACKAGE_FORMAT

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
HUB_EXTRA_HINT = "pip install -r requirements-app.txt"


def package_options(translator, saved: Optional[dict]) -> dict:
    """The saved options the package keeps: those the model and the dataset mode rebuild
    their networks (and intensity windows) from, the model's name and the training size."""
    from data import DATASETS
    from models import MODELS

    opt = translator.opt
    keys = ["model", "crop_size"]
    for table in (MODELS.get(opt.model), DATASETS.get(opt.dataset_mode)):
        keys += [k for k in getattr(table, "architecture_keys", ()) if k not in keys]
    source = saved or {}
    return {k: source[k] if k in source else getattr(opt, k) for k in keys if k in source or hasattr(opt, k)}


def package_config(translator, saved: Optional[dict], epoch: str, ema: bool) -> dict:
    """``config.json``: what the generator is and how it was trained, in plain values. A model
    with networks of its own (it refuses --netG, --normG: StarGAN v2) names its generator's
    class, not the unread defaults."""
    from options.base_options import unused_option_reason

    opt = translator.opt
    nc_in, nc_out = translator.net_channels
    own = unused_option_reason(opt.model, opt.dataset_mode, "netG") is not None
    return {
        "format": PACKAGE_FORMAT, "format_version": FORMAT_VERSION,
        "model": opt.model, "generator": translator.net_name,
        "netG": type(translator.model.unwrap(translator.net)).__name__ if own else opt.netG, "ngf": opt.ngf,
        "norm": "its own" if own else opt.normG, "dropout": not opt.no_dropout,
        "generator_channels": [nc_in, nc_out], "image_channels": [translator.input_nc, translator.output_nc],
        "direction": _translates(translator), "colour_space": translator.colour_space.graph or "image",
        "intensity_windows": getattr(opt, "intensity_windows", None),
        "preprocess": {k: getattr(opt, k, None) for k in ("preprocess", "load_size", "crop_size")},
        "size_multiple": translator.size_multiple, "min_size": translator.min_size,
        "epoch": epoch, "ema": ema,
        "options": package_options(translator, saved),
    }


def _translates(translator) -> str:
    """"AtoB" or "BtoA": the domains this generator maps between (G_B of CycleGAN: B to A)."""
    if translator.net_name == "G_B":
        return "BtoA"
    return "AtoB" if translator.net_name == "G_A" else translator.opt.direction


def write_weights(translator, path: Path) -> None:
    """The translator's generator (the very tensors it runs) as ``model.safetensors``."""
    from safetensors.torch import save_file

    from util.weights import plain_tensors

    state = translator.model.unwrap(translator.net).state_dict()
    save_file(plain_tensors(state), str(path), metadata={"format": "pt", "generator": translator.net_name})


def write_package(translator, out: Path, run_folder: Path, results_dir: Path, epoch: str, ema: bool) -> Path:
    """Write the package of ``translator`` (loaded from ``run_folder``) into ``out``: into a
    temporary folder first, then renamed, so a failed export leaves no half package."""
    from util.saved_options import load_saved_options

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} exists and is not empty: give --out a new folder (nothing was written)")
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        saved = load_saved_options(run_folder)
        config = package_config(translator, saved, epoch, ema)
        (tmp / PACKAGE_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        write_weights(translator, tmp / WEIGHTS_FILE)
        record = RunRecord.read(run_folder, Path(results_dir) / run_folder.name, saved)
        write_card(tmp, config, record)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def read_config(folder: Path) -> dict:
    """``config.json`` of a package folder, checked."""
    path = Path(folder) / PACKAGE_CONFIG
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{folder} is not a model package: no {PACKAGE_CONFIG} (write one with export.py "
                        f"--format hub)") from None
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path}: {e}") from e
    if config.get("format") != PACKAGE_FORMAT:
        raise UserError(f"{path} is not a pix2cycle package (format {config.get('format')!r})")
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise UserError(f"{path} has format version {config['format_version']}, newer than this pix2cycle "
                        f"reads ({FORMAT_VERSION}): update pix2cycle")
    if not (Path(folder) / WEIGHTS_FILE).is_file():
        raise UserError(f"{folder} has no {WEIGHTS_FILE}")
    return config


def looks_like_hub_id(text: str) -> bool:
    """``user/name`` (one slash, no path that exists here)."""
    return text.count("/") == 1 and not text.startswith((".", "/")) and not Path(text).exists()


def resolve_package(path_or_id: Union[str, Path], revision: Optional[str] = None) -> Path:
    """The local folder of a package: ``path_or_id`` itself, or the snapshot of a Hub id
    (downloaded, or from the cache: with ``HF_HUB_OFFLINE=1`` only from the cache)."""
    text = str(path_or_id)
    if Path(text).is_dir() or not looks_like_hub_id(text):
        if not Path(text).is_dir():
            raise UserError(f"no model package at {text}: a folder written by export.py --format hub, or a Hub "
                            f"id user/name")
        return Path(text)
    hub = _hub_module()
    try:
        return Path(hub.snapshot_download(repo_id=text, revision=revision,
                                          allow_patterns=[PACKAGE_CONFIG, WEIGHTS_FILE, CARD_FILE]))
    except Exception as e:  # the Hub's errors: not found, offline without a cache, no access
        raise UserError(f"cannot get {text} from the Hugging Face Hub: {type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}") from e


def _hub_module():
    try:
        import huggingface_hub
    except ImportError:
        raise UserError(f"a Hub id needs huggingface_hub, not installed here: {HUB_EXTRA_HINT}") from None
    return huggingface_hub


def check_push_target(repo_id: str) -> str:
    """The token to upload with, after checking ``repo_id``; a one-line error before any work."""
    hub = _hub_module()
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if repo_id.count("/") != 1:
        raise UserError(f"--push_to_hub wants USER/NAME (or ORG/NAME), not '{repo_id}'")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise UserError(f"--push_to_hub {repo_id}: {str(e).splitlines()[0]}") from None
    token = hub.get_token()
    if not token:
        raise UserError("--push_to_hub needs a Hugging Face token: run `hf auth login` or set HF_TOKEN "
                        "(nothing was exported)")
    return token


def push_package(folder: Path, repo_id: str, token: str, private: bool = False) -> str:
    """Upload ``folder`` to ``repo_id`` with huggingface_hub's ``create_repo`` and ``upload_folder``
    (the one step not tested here: it needs the network); returns the commit's URL."""
    hub = _hub_module()
    read_config(folder)
    hub.create_repo(repo_id, token=token, private=private, exist_ok=True)
    info = hub.upload_folder(repo_id=repo_id, folder_path=str(folder), token=token,
                             commit_message="Upload pix2cycle model package")
    return str(getattr(info, "commit_url", info))


def sample_files(folder: Path) -> List[str]:
    """The sample images a package holds (relative paths, sorted)."""
    return sorted(f"{SAMPLES_DIR}/{p.name}" for p in (Path(folder) / SAMPLES_DIR).glob("*") if p.is_file())
