"""Loss curves drawn to an image file with matplotlib (imported only when a plot is drawn).

The figure is built with matplotlib's object API on an Agg canvas, so no global pyplot
state or interactive back end is touched, and it works on machines without a display.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Union

# Columns of a history row that are bookkeeping, not losses.
META_KEYS = frozenset({"epoch", "epoch_frac", "iters", "total_iters", "time", "data", "kind"})


def loss_series(history: list[dict]) -> dict[str, tuple[list[float], list[float]]]:
    """Split history rows into ``{loss name: (x = fractional epoch, y)}``, in first-seen order."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    for row in history:
        x = row.get("epoch_frac", row.get("epoch"))
        if x is None:
            continue
        for name, value in row.items():
            if name in META_KEYS or not isinstance(value, (int, float)):
                continue
            xs, ys = series.setdefault(name, ([], []))
            xs.append(float(x))
            ys.append(float(value))
    return series


def plot_losses(history: list[dict], path: Union[str, Path], title: str) -> bool:
    """Draw one line per loss over fractional epochs and write it atomically to ``path``.

    The image format follows the file suffix (``.png`` usually). Returns False, writing
    nothing, when the history holds no loss values yet.
    """
    series = loss_series(history)
    if not series:
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for name, (xs, ys) in series.items():
        axes.plot(xs, ys, label=name, linewidth=1.2)
    axes.set_title(title)
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    save_figure(figure, path)
    return True


def save_figure(figure, path: Union[str, Path]) -> None:
    """Write a matplotlib ``figure`` atomically to ``path``, in the format of its suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").lower() or "png"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".{fmt}", dir=path.parent)
    os.close(fd)
    try:
        figure.savefig(tmp, format=fmt)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
