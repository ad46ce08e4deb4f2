"""The page of an ablation study (``scripts/ablate.py``): metrics, loss curves, images.

Reads only what the runs wrote: ``loss_log.jsonl`` of each training run and ``metrics.json``
plus the images of each ``test.py`` run.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import dominate
from dominate import tags

from evaluation.evaluator import METRICS_FILE, base_name, headline
from evaluation.metrics import METRICS
from reporting.html import href, write_text_atomic
from reporting.plots import loss_series, save_figure
from reporting.scores import format_value
from reporting.visualizer import read_history

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
    _report: Optional[dict] = field(default=None, init=False, repr=False, compare=False)

    def metrics(self) -> Dict[str, dict]:
        return (self.metrics_file() or {}).get("metrics", {})

    def metrics_file(self) -> Optional[dict]:
        """test.py's metrics.json of the run (read once); None before it was tested."""
        if self._report is None:
            path = self.test_dir / METRICS_FILE
            self._report = json.loads(path.read_text()) if path.is_file() else None
        return self._report

    def per_image(self) -> Dict[str, Dict[str, float]]:
        """Image name -> its paired scores (test.py's ``per_image`` in metrics.json)."""
        return (self.metrics_file() or {}).get("per_image", {})

    def history(self) -> List[dict]:
        return read_history(self.train_dir / "loss_log.jsonl")


def best_runs(runs: List[RunResult]) -> Dict[str, Optional[int]]:
    """Metric name -> index of the best run (by the metric's direction); None when unknown."""
    table = [r.metrics() for r in runs]
    names = [n for m in table for n in m]
    best: Dict[str, Optional[int]] = {}
    for name in dict.fromkeys(names):
        spec = METRICS.get(base_name(name))
        scored = [(headline(m[name]), i) for i, m in enumerate(table) if name in m and "unavailable" not in m[name]]
        if spec is None or not scored:
            best[name] = None
            continue
        best[name] = (max if spec.higher_is_better else min)(scored)[1]
    return best


def _cell(result: Optional[dict], name: str) -> str:
    if not result:
        return "-"
    return format_value(name, result)


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


Cell = Tuple[str, bool]  # its text, and whether it is the best of its column
Table = Tuple[List[str], List[Tuple[str, List[Cell]]]]  # metric names; (configuration, cells) rows


def metrics_table(runs: List[RunResult]) -> Table:
    """Every configuration's metrics, the best of each column marked (when there are several)."""
    best = best_runs(runs)
    rows = []
    for i, run in enumerate(runs):
        metrics = run.metrics()
        rows.append((run.label, [(_cell(metrics.get(n), n), winner == i and len(runs) > 1)
                                 for n, winner in best.items()]))
    return list(best), rows


def _html_table(table: Table, cls: str, row_cls: Optional[str] = None) -> None:
    names, rows = table
    with tags.table(cls=cls):
        with tags.tr():
            tags.th("configuration")
            for name in names:
                tags.th(name)
        for label, cells in rows:
            with tags.tr(**({"cls": row_cls} if row_cls else {})):
                tags.td(label)
                for text, best in cells:
                    tags.td(text + " ★", cls="best") if best else tags.td(text)


def _markdown_table(table: Table) -> List[str]:
    names, rows = table
    lines = ["| configuration | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    return lines + [f"| {label} | " + " | ".join(f"**{t}**" if best else t for t, best in cells) + " |"
                    for label, cells in rows]


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
            spec = METRICS.get(base_name(name))
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


def paired_table(runs: List[RunResult]) -> Optional[Tuple[str, Table]]:
    """The reference's label and the image-by-image table against it; None without per-image scores."""
    reference = reference_of(runs)
    rows = paired_rows(runs, reference)
    if not rows:
        return None
    names = list(dict.fromkeys(n for _, cells in rows for n in cells))
    return runs[reference].label, (names, [(label, [(cells.get(n, "-"), False) for n in names])
                                           for label, cells in rows])


def _paired_section(runs: List[RunResult]) -> None:
    paired = paired_table(runs)
    if paired is None:
        return
    reference, table = paired
    tags.h2(f"Image by image, against {reference}")
    tags.p("On how many of the same test images each configuration scores better than the reference, "
           "and the mean difference ± its standard error.")
    _html_table(table, "metrics paired")


def markdown_table(runs: List[RunResult]) -> str:
    """The metrics table as Markdown (for a report or a README), the best of each column in bold,
    then the image-by-image comparison with the reference."""
    lines = _markdown_table(metrics_table(runs))
    paired = paired_table(runs)
    if paired is not None:
        reference, table = paired
        lines += ["", f"Image by image, against {reference} (better on k of n images; "
                  "mean difference ± standard error):", "", *_markdown_table(table)]
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
            _html_table(metrics_table(runs), "metrics", "row")
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
        _html_table(metrics_table(runs), "metrics", "row")
        _paired_section(runs)
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
