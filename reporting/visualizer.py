"""The training visualizer: loss logs, the training web page and the live back ends.

``Visualizer`` is the only display code that reads the options object; it hands plain
values to ``reporting.html`` (pages), ``reporting.plots`` (loss curves) and ``reporting.display`` (live
back ends). Display problems are reported once and never raised into training; the loss
logs are the run's record and are always written.

Files under ``<checkpoints_dir>/<name>/``:
  loss_log.txt    reference-format lines, appended (a header line per run)
  loss_log.jsonl  one JSON object per printed line ("kind": "train") and per validation
                  ("kind": "val"), appended
  web/index.html  the training page; web/images/ its pictures, web/losses.png the curves
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from reporting.display import BACKENDS, DisplayBackend, plain_options
from reporting.html import TrainingPage
from reporting.plots import plot_losses
from reporting.progress import echo

LOSS_PLOT = "losses.png"


def trim_history(history: list[dict], epoch_frac: float) -> None:
    """Drop rows at or after ``epoch_frac``: a resumed run overwrites what came later."""
    while history and history[-1]["epoch_frac"] >= epoch_frac:
        history.pop()


def read_history(path: Path) -> list[dict]:
    """The training rows of a run's ``loss_log.jsonl``, as its training page plots them: a
    resumed run's rows replace those it went back over, a line cut short by a crash is skipped."""
    history: list[dict] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return history
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if row.get("kind", "train") == "train" and row.get("epoch_frac") is not None:
            trim_history(history, row["epoch_frac"])
            history.append(row)
    return history


class Visualizer:
    """Logs losses, keeps the training page and feeds the live back ends of one run."""

    def __init__(self, opt: Any, plot_interval: float = 30.0) -> None:
        self.name = opt.name
        self.is_train = bool(opt.isTrain)
        self.run_dir = Path(opt.checkpoints_dir) / opt.name
        self.web_dir = self.run_dir / "web"
        self.use_html = self.is_train and not opt.no_html  # no_html is a training flag
        self.winsize = int(opt.display_winsize)
        self.plot_interval = plot_interval
        self.history: list[dict] = []
        self.total_iters: Optional[int] = None
        self._last_plot = float("-inf")
        self._plot_stale = False
        self._warned: set[str] = set()
        self._pending: Optional[dict] = None  # a jsonl row waiting for its epoch fraction

        self.backends: list[DisplayBackend] = [
            entry.backend(**entry.arguments(opt)) for entry in BACKENDS.values() if entry.wanted(opt)
        ]
        self.page: Optional[TrainingPage] = None
        resume = self.is_train and bool(opt.continue_train)
        if self.use_html:
            self.page = TrainingPage(self.web_dir, f"Experiment name = {self.name}",
                                     refresh=0, width=self.winsize)
            if resume:
                self.page.restore()
            options = plain_options(opt)
            self.page.set_options_text("\n".join(f"{k}: {v}" for k, v in options.items()))
            self._guard("page", self.page.save)
        if self.is_train:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.log_txt = self.run_dir / "loss_log.txt"
            self.log_jsonl = self.run_dir / "loss_log.jsonl"
            if resume:
                self.history = self._read_history()
            with open(self.log_txt, "a", encoding="utf-8") as log:
                log.write(f"================ Training Loss ({time.strftime('%c')}) "
                          "================\n")

    # ----------------------------------------------------------------- reference API
    def reset(self) -> None:
        """Kept for scripts written against the reference; nothing to reset."""

    def display_current_results(self, visuals: dict[str, Any], epoch: int, total_iters: int,
                                save_result: bool = False) -> None:
        """Show ``visuals`` (name -> image tensor) live; with ``save_result``, also on the page."""
        from util.util import tensor2im  # torch is only needed here

        self.total_iters = total_iters
        images = {label: tensor2im(tensor) for label, tensor in visuals.items()}
        for backend in self.backends:
            backend.show_images(images, epoch, total_iters)
        if save_result and self.page is not None:
            self._guard("page", self._save_visuals, images, epoch, total_iters)

    def plot_current_losses(self, epoch: int, counter_ratio: float, losses: dict[str, float],
                            total_iters: Optional[int] = None) -> None:
        """Add a point to the loss curves at ``epoch + counter_ratio``."""
        if total_iters is not None:
            self.total_iters = total_iters
        epoch_frac = epoch + float(counter_ratio)
        if self._pending is not None and self._pending["epoch"] == epoch:
            self._pending["epoch_frac"] = epoch_frac
            if self._pending["total_iters"] is None:
                self._pending["total_iters"] = self.total_iters
        self._flush_pending()
        self._add_history(epoch, epoch_frac, losses)
        for backend in self.backends:
            backend.plot_losses(epoch_frac, dict(losses), self.total_iters)
        if self.page is not None and time.monotonic() - self._last_plot >= self.plot_interval:
            self._guard("loss plot", self._draw_losses)

    def print_current_losses(self, epoch: int, iters: int, losses: dict[str, float],
                             t_comp: float, t_data: float, total_iters: Optional[int] = None,
                             epoch_frac: Optional[float] = None) -> None:
        """Print and log one line of losses (``iters``: images seen this epoch)."""
        if total_iters is not None:
            self.total_iters = total_iters
        message = f"(epoch: {epoch}, iters: {iters}, time: {t_comp:.3f}, data: {t_data:.3f}) "
        message += "".join(f"{name}: {float(value):.3f} " for name, value in losses.items())
        echo(message)
        if not self.is_train:
            return
        with open(self.log_txt, "a", encoding="utf-8") as log:
            log.write(message + "\n")
        row = {"kind": "train", "epoch": epoch, "epoch_frac": epoch_frac, "iters": iters,
               "total_iters": self.total_iters, "time": t_comp, "data": t_data,
               **{name: float(value) for name, value in losses.items()}}
        self._flush_pending()
        if epoch_frac is None:
            # reference-style call: plot_current_losses comes next with the epoch fraction
            self._pending = row
        else:
            self._append_jsonl(row)
            self._add_history(epoch, epoch_frac, losses)

    def log_metrics(self, epoch: int, total_iters: int, metrics: dict[str, Any]) -> None:
        """Record validation metrics: the jsonl log, the page and the live back ends."""
        self.total_iters = total_iters
        # Not "(epoch: ..." first: tools that parse the reference's loss lines skip this one.
        message = (f"validation (epoch: {epoch}, total_iters: {total_iters}): "
                   + " ".join(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}"
                              for k, v in metrics.items()))
        echo(message)
        self._flush_pending()
        if self.is_train:
            with open(self.log_txt, "a", encoding="utf-8") as log:
                log.write(message + "\n")
            self._append_jsonl({"kind": "val", "epoch": epoch, "total_iters": total_iters,
                                **metrics})
        numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        for backend in self.backends:
            backend.log_metrics(total_iters, numbers)
        if self.page is not None:
            self.page.add_metrics(epoch, total_iters, numbers)
            self._guard("page", self.page.save)

    def close(self) -> None:
        """Draw the final loss curves, save the page and close the back ends."""
        self._flush_pending()
        if self.page is not None:
            self._guard("loss plot", self._draw_losses)
            self._guard("page", self.page.save)
        for backend in self.backends:
            backend.close()

    # ------------------------------------------------------------------------ helpers
    def _save_visuals(self, images: dict[str, Any], epoch: int, total_iters: int) -> None:
        from data.codec import write_preview

        assert self.page is not None
        saved = []
        for label, image in images.items():
            relpath = f"images/epoch{epoch:03d}_iter{total_iters}_{label}.png"
            write_preview(image, self.web_dir / relpath)
            saved.append((label, relpath))
        self.page.add_visuals(epoch, total_iters, saved)
        self._draw_losses()
        self.page.save()

    def _draw_losses(self) -> None:
        self._last_plot = time.monotonic()
        if not self._plot_stale or self.page is None:
            return
        if plot_losses(self.history, self.web_dir / LOSS_PLOT, f"{self.name} loss over time"):
            self.page.set_loss_plot(LOSS_PLOT)
            self.page.save()
        self._plot_stale = False

    def _add_history(self, epoch: int, epoch_frac: float, losses: dict[str, float]) -> None:
        if self.history and self.history[-1]["epoch_frac"] == epoch_frac:
            self.history[-1].update({k: float(v) for k, v in losses.items()})
        else:
            trim_history(self.history, epoch_frac)
            self.history.append({"epoch": epoch, "epoch_frac": epoch_frac,
                                 "iters": self.total_iters,
                                 **{k: float(v) for k, v in losses.items()}})
        self._plot_stale = True

    def _read_history(self) -> list[dict]:
        history = read_history(self.log_jsonl)
        self._plot_stale = bool(history)
        return history

    def _flush_pending(self) -> None:
        if self._pending is not None:
            self._append_jsonl(self._pending)
            self._pending = None

    def _append_jsonl(self, row: dict) -> None:
        with open(self.log_jsonl, "a", encoding="utf-8") as log:
            log.write(json.dumps(row) + "\n")

    def _guard(self, what: str, action: Callable[..., Any], *args: Any) -> None:
        """Run a page or plot update; report its first failure, never raise it."""
        try:
            action(*args)
        except Exception as err:  # the page is a view; training must go on
            if what not in self._warned:
                self._warned.add(what)
                print(f"warning: could not update the training {what} "
                      f"({type(err).__name__}: {err}); training goes on", file=sys.stderr)
