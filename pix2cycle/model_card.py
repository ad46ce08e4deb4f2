"""The model card of a package (``README.md``): written from what the run left on disk.

It reads files only, never the training code: ``train_opt.json`` (the options), the
epoch-numbered weight files (how far training went), ``best.json`` (validation's best
weights) in the run folder, and test.py's newest ``metrics.json`` and gallery under
``results/<name>/``. The front matter is the Hub's metadata (YAML); the license is left for
the author, and the card says so.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote, unquote

METRICS_FILE = "metrics.json"  # test.py's, read from disk (evaluation/evaluator.py writes it)
BEST_FILE = "best.json"  # validation's (engine/validation.py writes it)
LICENSE_PLACEHOLDER = "FILL-IN-A-LICENSE"
MAX_SAMPLES = 3

CARD_FILE = "README.md"
SAMPLES_DIR = "samples"
# Saved options the card lists as "the options that matter" (training, not architecture).
TRAINING_KEYS = ("n_epochs", "n_epochs_decay", "batch_size", "lr", "gan_mode", "lambda_L1", "lambda_A",
                 "lambda_B", "lambda_identity", "lambda_NCE", "ema_decay", "preprocess", "load_size", "crop_size",
                 "direction", "dataset_mode")


def describe(config: Dict) -> str:
    """One line: what a package translates."""
    return (f"{config['model']} {config['generator']} ({config['netG']}, ngf {config['ngf']}, {config['norm']} norm), "
            f"{config['direction']}, {config['image_channels'][0]} -> {config['image_channels'][1]} channels")


class _Images(HTMLParser):
    """The ``(alt, src)`` of every ``<img>`` of a gallery page, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.images: List[Tuple[str, str]] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "img":
            attrs = dict(attrs)
            if attrs.get("src"):
                self.images.append((attrs.get("alt") or "", unquote(attrs["src"])))


@dataclass
class RunRecord:
    """What the card tells of a run."""

    name: str
    saved: dict
    last_saved_epoch: Optional[int] = None
    metrics: Optional[dict] = None  # test.py's metrics.json
    metrics_from: Optional[str] = None  # its folder, relative to results/
    best: Optional[dict] = None  # validation's best.json
    samples: List[Tuple[str, Path]] = field(default_factory=list)  # (label, image file) of the gallery
    train_images: Dict[str, int] = field(default_factory=dict)  # folder -> image count

    @classmethod
    def read(cls, run_folder: Path, results: Path, saved: Optional[dict]) -> RunRecord:
        record = cls(name=run_folder.name, saved=dict(saved or {}))
        epochs = [int(m.group(1)) for p in run_folder.glob("*_net_*") if (m := re.match(r"(\d+)_net_", p.name))]
        record.last_saved_epoch = max(epochs) if epochs else None
        record.best = _read_json(run_folder / BEST_FILE)
        tested = sorted(results.glob(f"*/{METRICS_FILE}"), key=lambda p: p.stat().st_mtime)
        gallery_dir = None
        if tested:
            record.metrics = _read_json(tested[-1])
            record.metrics_from = tested[-1].parent.name
            gallery_dir = tested[-1].parent
        else:
            pages = sorted(results.glob("*/index.html"), key=lambda p: p.stat().st_mtime)
            gallery_dir = pages[-1].parent if pages else None
        if gallery_dir is not None and (gallery_dir / "index.html").is_file():
            record.samples = _first_row(gallery_dir)
        record.train_images = _count_training_images(record.saved)
        return record


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _first_row(gallery_dir: Path) -> List[Tuple[str, Path]]:
    """Up to MAX_SAMPLES images of the gallery's first row (real, translated, target)."""
    parser = _Images()
    parser.feed((gallery_dir / "index.html").read_text(encoding="utf-8"))
    found = [(alt, gallery_dir / src) for alt, src in parser.images if (gallery_dir / src).is_file()]
    return found[:MAX_SAMPLES]


def _count_training_images(saved: dict) -> Dict[str, int]:
    """Images in the run's training folders, where they are still on this machine."""
    from data.image_folder import is_image_file

    root = Path(saved.get("dataroot") or "")
    if not saved.get("dataroot") or not root.is_dir():
        return {}
    phase = saved.get("phase", "train")
    # The unaligned modes read <phase>A and <phase>B, the others <phase>/.
    folders = [phase + "A", phase + "B"] if saved.get("dataset_mode") == "unaligned" else [phase]
    counts = {}
    for folder in folders:
        if (root / folder).is_dir():
            counts[folder] = sum(1 for p in (root / folder).rglob("*") if p.is_file() and is_image_file(str(p)))
    return counts


# ----------------------------------------------------------------------------- the card
def _format_result(result: dict) -> str:
    if "unavailable" in result:
        return f"n/a ({result['unavailable']})"
    if "value" in result:
        return f"{result['value']:.4g}"
    return f"{result['mean']:.4g} ± {result['std']:.4g}"


def _front_matter(config: dict) -> List[str]:
    tags = ["pix2cycle", "image-to-image", config["model"], config["netG"]]
    return ["---", "library_name: pix2cycle", f"license: {LICENSE_PLACEHOLDER}  # the author's to choose", "tags:",
            *[f"- {t}" for t in dict.fromkeys(tags)], "pipeline_tag: image-to-image", "---", ""]


def _data_lines(record: RunRecord) -> List[str]:
    saved = record.saved
    root = Path(saved["dataroot"]).name if saved.get("dataroot") else "unknown"
    lines = [f"- dataset: `{root}` (dataset mode `{saved.get('dataset_mode', '?')}`)"]
    if record.train_images:
        lines.append("- training images: " + ", ".join(f"{n} in `{k}/`" for k, n in record.train_images.items()))
    if saved.get("max_dataset_size") not in (None, float("inf")):
        lines.append(f"- at most {saved['max_dataset_size']} images per epoch (`--max_dataset_size`)")
    return lines


def _options_table(saved: dict, config: dict) -> List[str]:
    rows = [("netG", config["netG"]), ("ngf", config["ngf"]), ("norm", config["norm"]),
            ("no_dropout", not config["dropout"])]
    rows += [(k, saved[k]) for k in TRAINING_KEYS if k in saved]
    return ["| option | value |", "|---|---|", *[f"| `--{k}` | `{v}` |" for k, v in rows]]


def _metrics_lines(record: RunRecord, config: dict) -> List[str]:
    lines: List[str] = []
    if record.metrics:
        m = record.metrics
        lines += [f"test.py on `{m.get('phase')}` (epoch `{m.get('epoch')}`, {m.get('images')} images; "
                  f"`results/{record.name}/{record.metrics_from}/metrics.json`):", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {name} | {_format_result(r)} |" for name, r in m.get("metrics", {}).items()]
        lines.append("")
        if config["ema"]:
            lines += ["The package holds the weight average (EMA); these are the figures of test.py's last run, "
                      "which scores it with `--use_ema` only.", ""]
    else:
        lines += ["No test.py metrics: the run was not tested with `--metrics` before it was packaged.", ""]
    if record.best:
        b = record.best
        lines += [f"Validation's best weights: {b.get('metric')} {b.get('value'):.4g} at epoch {b.get('epoch')} "
                  f"(`best.json`; `--epoch best` packages them).", ""]
    return lines


def _load_lines(config: dict) -> List[str]:
    other = []
    if config["generator"] in ("G_A", "G_B"):  # a generator per direction: the package holds one
        back = "AtoB" if config["direction"] == "BtoA" else "BtoA"
        other = [f"This package holds `net{config['generator']}` ({config['direction']}); "
                 f"`python export.py --format hub --direction {back} ...` packages the other one."]
    return ["```python", "from PIL import Image", "from pix2cycle import Translator", "",
            'translator = Translator.from_pretrained("USER/NAME")  # or the folder of this card',
            'translator(Image.open("input.png")).save("translated.png")  # any size', "```", "",
            "From the command line, in a pix2cycle checkout:", "",
            "```", "python translate.py input.png --model_dir THIS_FOLDER --out translated/", "```", ""] + other


def card_text(config: dict, record: RunRecord, samples: List[Tuple[str, str]]) -> str:
    """The card's Markdown; ``samples`` are (label, path relative to the card)."""
    saved = record.saved
    planned = saved.get("n_epochs", 0) + saved.get("n_epochs_decay", 0) if saved else None
    epochs = f"{planned} scheduled (`--n_epochs {saved.get('n_epochs')} --n_epochs_decay {saved.get('n_epochs_decay')}`)" \
        if saved else "unknown (no train_opt.json)"
    if record.last_saved_epoch is not None:
        epochs += f"; the last epoch-numbered weights are of epoch {record.last_saved_epoch}"
    lines = _front_matter(config)
    lines += [f"# {record.name}", "",
              f"An image-to-image translation model trained with pix2cycle: {describe(config)}. "
              f"Packaged weights: epoch `{config['epoch']}`{' (the weight average, EMA)' if config['ema'] else ''}.",
              "", f"**License:** not chosen yet. The author fills in the `license:` field above "
              f"(replacing `{LICENSE_PLACEHOLDER}`) before sharing.", "",
              "## Data", "", *_data_lines(record), "",
              "## Training", "", f"Epochs: {epochs}.", "", *_options_table(saved, config), "",
              "## Metrics", "", *_metrics_lines(record, config)]
    if samples:
        lines += ["## Samples", "", "From test.py's gallery: " + ", ".join(label for label, _ in samples) + ".", ""]
        lines += [f"![{label}]({path})" for label, path in samples] + [""]
    lines += ["## How to use", "", *_load_lines(config), "",
              "## Files", "", "- `config.json`: the generator's architecture and the run's options that rebuild it",
              "- `model.safetensors`: its weights (no pickle)", "- `README.md`: this card", ""]
    return "\n".join(lines)


def write_card(folder: Path, config: dict, record: RunRecord) -> Path:
    """Copy the samples into ``folder/samples/`` and write ``folder/README.md``."""
    samples = []
    for label, source in record.samples:
        (folder / SAMPLES_DIR).mkdir(exist_ok=True)
        target = folder / SAMPLES_DIR / source.name
        shutil.copyfile(source, target)
        samples.append((label, quote(f"{SAMPLES_DIR}/{source.name}")))
    path = folder / CARD_FILE
    path.write_text(card_text(config, record, samples), encoding="utf-8")
    return path
