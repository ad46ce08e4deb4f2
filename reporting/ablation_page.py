"""The page of an ablation study (``scripts/ablate.py``): metrics, loss curves, images.

Reads only what the runs wrote: ``loss_log.jsonl`` of each training run and ``metrics.json``
plus the images of each ``test.py`` run. No torch here.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import dominate
from dominate import tags

from reporting.html import href, write_text_atomic
from reporting.plots import loss_series, save_figure
from util.metrics import METRICS

_CSS = """
body { font-family: sans-serif; margin: 1em; }
table.metrics { border-collapse: collapse; }
table.metrics td, table.metrics th { padding: 3px 12px; border-bottom: 1px solid #ddd; text-align: left; }
td.best { font-weight: bold; background: #e8f5e9; }
table.images td { padding: 3px; text-align: center; vertical-align: top; font-size: 85%; }
"""


@dataclass
class RunResult:
    """One configuration: its label, flags, training folder and test results folder."""

    label: str
    flags: Dict[str, str]
    train_dir: Path
    test_dir: Path

    def metrics(self) -> Dict[str, dict]:
        return (self.metrics_file() or {}).get("metrics", {})

    def metrics_file(self) -> Optional[dict]:
        """test.py's metrics.json of the run; None before it was tested."""
        path = self.test_dir / "metrics.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def per_image(self) -> Dict[str, Dict[str, float]]:
        """Image name -> its paired scores (test.py's ``per_image`` in metrics.json)."""
        return (self.metrics_file() or {}).get("per_image", {})

    def history(self) -> List[dict]:
        path = self.train_dir / "loss_log.jsonl"
        if not path.is_file():
            return []
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [r for r in rows if r.get("kind", "train") == "train"]


def _base(name: str) -> str:
    head = name.rpartition("_")[0]
    return name if name in METRICS else head if head in METRICS else name


def best_runs(runs: List[RunResult]) -> Dict[str, Optional[int]]:
    """Metric name -> index of the best run (by the metric's direction); None when unknown."""
    table = [r.metrics() for r in runs]
    names = [n for m in table for n in m]
    best: Dict[str, Optional[int]] = {}
    for name in dict.fromkeys(names):
        spec = METRICS.get(_base(name))
        scored = [(m[name].get("mean", m[name].get("value")), i) for i, m in enumerate(table)
                  if name in m and "unavailable" not in m[name]]
        if spec is None or not scored:
            best[name] = None
            continue
        best[name] = (max if spec.higher_is_better else min)(scored)[1]
    return best


def _cell(result: Optional[dict], name: str) -> str:
    if not result:
        return "-"
    if "unavailable" in result:
        return "n/a"
    fmt = METRICS[_base(name)].fmt if _base(name) in METRICS else ".4g"
    if "value" in result:
        return f"{result['value']:{fmt}}"
    return f"{result['mean']:{fmt}} ± {result['std']:{fmt}}"


def plot_study_losses(runs: List[RunResult], path: Path, title: str) -> bool:
    """One panel per loss, one line per configuration; False when no run logged a loss."""
    series = {r.label: loss_series(r.history()) for r in runs}
    names = list(dict.fromkeys(n for s in series.values() for n in s))
    if not names:
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(2, len(names))
    rows = (len(names) + cols - 1) // cols
    figure = Figure(figsize=(6 * cols, 3.2 * rows), dpi=100)
    FigureCanvasAgg(figure)
    for k, name in enumerate(names):
        axes = figure.add_subplot(rows, cols, k + 1)
        for j, (label, s) in enumerate(series.items()):
            if name in s:  # one colour per configuration in every panel
                axes.plot(*s[name], label=label, linewidth=1.1, color=f"C{j % 10}")
        axes.set_title(name, fontsize="medium")
        axes.set_xlabel("epoch")
        axes.grid(True, alpha=0.3)
        if k == 0:
            axes.legend(fontsize="x-small")
    figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)
    return True


def _images(run: RunResult) -> Dict[str, Dict[str, Path]]:
    """Image stem -> {visual label -> file} of a test run."""
    found: Dict[str, Dict[str, Path]] = {}
    folder = run.test_dir / "images"
    for path in sorted(folder.glob("*.png")) if folder.is_dir() else []:
        stem, _, label = path.stem.rpartition("_")
        if stem.endswith(("_real", "_fake", "_rec", "_idt")):  # labels like real_A, fake_B
            stem, _, first = stem.rpartition("_")
            label = f"{first}_{label}"
        found.setdefault(stem, {})[label] = path
    return found


def _metrics_table(runs: List[RunResult]) -> None:
    """The table of every configuration's metrics, the best of each column marked."""
    best = best_runs(runs)
    with tags.table(cls="metrics"):
        with tags.tr():
            tags.th("configuration")
            for name in best:
                tags.th(name)
        for i, run in enumerate(runs):
            metrics = run.metrics()
            with tags.tr(cls="row"):
                tags.td(run.label)
                for name, winner in best.items():
                    mark = winner == i and len(runs) > 1
                    tags.td(_cell(metrics.get(name), name) + (" ★" if mark else ""), cls="best" if mark else "")


def reference_of(runs: List[RunResult]) -> int:
    """The run the others are compared with: the one without flags of its own (a preset's
    baseline), else the first."""
    return next((i for i, run in enumerate(runs) if not run.flags), 0)


def paired_rows(runs: List[RunResult], reference: int) -> List[Tuple[str, Dict[str, str]]]:
    """Each other configuration against ``runs[reference]`` on the same test images: per
    metric, on how many images it scores better, and the mean of the differences ± their
    standard error (the spread of a mean over n images, std / sqrt(n))."""
    base = runs[reference].per_image()
    rows = []
    for i, run in enumerate(runs):
        if i == reference:
            continue
        mine, cells = run.per_image(), {}
        common = [stem for stem in base if stem in mine]
        for name in dict.fromkeys(n for stem in common for n in base[stem]):
            spec = METRICS.get(_base(name))
            pairs = [(mine[s][name], base[s][name]) for s in common if name in mine[s] and name in base[s]]
            if spec is None or len(pairs) < 2:
                continue
            diffs = [a - b for a, b in pairs]
            better = sum(d > 0 if spec.higher_is_better else d < 0 for d in diffs)
            mean = sum(diffs) / len(diffs)
            se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))
            cells[name] = f"better on {better}/{len(diffs)}; {mean:+{spec.fmt}} ± {se:{spec.fmt}}"
        if cells:
            rows.append((run.label, cells))
    return rows


def _paired_table(runs: List[RunResult], reference: int) -> None:
    rows = paired_rows(runs, reference)
    if not rows:
        return
    names = list(dict.fromkeys(n for _, cells in rows for n in cells))
    tags.h2(f"Image by image, against {runs[reference].label}")
    tags.p("On how many of the same test images each configuration scores better than the reference, "
           "and the mean difference ± its standard error.")
    with tags.table(cls="metrics paired"):
        with tags.tr():
            tags.th("configuration")
            for name in names:
                tags.th(name)
        for label, cells in rows:
            with tags.tr():
                tags.td(label)
                for name in names:
                    tags.td(cells.get(name, "-"))


def markdown_table(runs: List[RunResult]) -> str:
    """The metrics table as Markdown (for a report or a README), the best of each column in bold,
    then the image-by-image comparison with the reference."""
    best = best_runs(runs)
    lines = ["| configuration | " + " | ".join(best) + " |", "|---" * (len(best) + 1) + "|"]
    for i, run in enumerate(runs):
        metrics = run.metrics()
        cells = [f"**{_cell(metrics.get(n), n)}**" if w == i and len(runs) > 1 else _cell(metrics.get(n), n)
                 for n, w in best.items()]
        lines.append(f"| {run.label} | " + " | ".join(cells) + " |")
    reference = reference_of(runs)
    rows = paired_rows(runs, reference)
    if rows:
        names = list(dict.fromkeys(n for _, cells in rows for n in cells))
        lines += ["", f"Image by image, against {runs[reference].label} (better on k of n images; "
                  "mean difference ± standard error):", "",
                  "| configuration | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        lines += [f"| {label} | " + " | ".join(cells.get(n, "-") for n in names) + " |" for label, cells in rows]
    return "\n".join(lines) + "\n"


def write_markdown(root: Path, title: str, experiments: Dict[str, List[RunResult]]) -> Path:
    """``root/results.md``: every experiment's table, as Markdown."""
    parts = [f"# {title}\n"]
    for experiment, runs in experiments.items():
        parts += ([f"## {experiment}\n"] if len(experiments) > 1 else []) + [markdown_table(runs)]
    path = root / "results.md"
    write_text_atomic(path, "\n".join(parts))
    return path


def _document(title: str) -> dominate.document:
    doc = dominate.document(title=title)
    with doc.head:
        tags.meta(charset="utf-8")
        tags.style(_CSS)
    return doc


def write_index_page(root: Path, title: str, experiments: Dict[str, List[RunResult]]) -> Path:
    """``root/index.html``: every experiment's table, each linked to its own page."""
    doc = _document(title)
    with doc.body:
        tags.h1(title)
        tags.p("Each experiment changes one thing of the baseline; a configuration shared by "
               "several experiments was trained once. Metrics: mean ± std over the test images.")
        for experiment, runs in experiments.items():
            tags.h2(tags.a(experiment, href=href(f"{experiment}.html")))
            _metrics_table(runs)
    page = root / "index.html"
    write_text_atomic(page, doc.render())
    return page


def write_study_page(root: Path, title: str, runs: List[RunResult], varied: List[str], *, page_name: str = "index",
                     max_images: int = 4) -> Path:
    """Write ``root/<page_name>.html`` and its figure (``losses.png``, or ``<page_name>_losses.png``);
    returns the page's path."""
    root.mkdir(parents=True, exist_ok=True)
    figure = "losses.png" if page_name == "index" else f"{page_name}_losses.png"
    has_plot = plot_study_losses(runs, root / figure, title)
    doc = _document(title)
    with doc.body:
        tags.h1(title)
        tags.p(f"{len(runs)} configuration(s); varied: {', '.join(varied) or '-'}. "
               "Metrics: mean ± std over the test images; the best of each column is marked.")
        _metrics_table(runs)
        _paired_table(runs, reference_of(runs))
        if has_plot:
            tags.h2("Training losses")
            tags.img(src=href(figure), style="max-width: 100%")
        tags.h2("The same test images across configurations")
        images = [_images(r) for r in runs]
        stems = [s for s in images[0] if all(s in im for im in images)][:max_images] if images else []
        with tags.table(cls="images"):
            for stem in stems:
                first = images[0][stem]
                inputs = [k for k in first if k.startswith("real")]
                outputs = [k for k in first if not k.startswith("real")]
                with tags.tr(cls="row"):
                    tags.td(stem)
                    for label in inputs[:1]:
                        _image(root, first[label], label)
                    for run, im in zip(runs, images):
                        for label in outputs:
                            _image(root, im[stem][label], f"{run.label}: {label}")
                    for label in inputs[1:]:
                        _image(root, first[label], label)
    page = root / f"{page_name}.html"
    write_text_atomic(page, doc.render())
    return page


def _image(root: Path, path: Path, caption: str) -> None:
    with tags.td():
        tags.img(src=href(os.path.relpath(path, root).replace(os.sep, "/")), width=128)
        tags.p(caption)
