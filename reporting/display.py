"""Live display back ends: visdom, TensorBoard and Weights & Biases.

Each back end takes plain arguments (never the options object), imports its package only
when it is built, and must never crash or stall training: the first failure prints one
warning line on stderr and turns that back end off for the rest of the run.

To add a back end, subclass ``DisplayBackend``, decorate its methods with ``@guarded``
and add one entry to ``BACKENDS``: the class, which options switch it on and the plain
arguments it is built with (the only place that reads the options for it).
"""

from __future__ import annotations

import functools
import logging
import socket
import sys
import warnings
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar
from urllib.parse import urlparse

import numpy as np

from util.errors import UserError
from util.registry import Registry

Images = dict[str, np.ndarray]
F = TypeVar("F", bound=Callable[..., Any])


def guarded(method: F) -> F:
    """Skip the call when the back end is off; turn it off (one warning) when the call fails."""

    @functools.wraps(method)
    def wrapper(self: DisplayBackend, *args: Any, **kwargs: Any) -> Any:
        if not self.enabled:
            return None
        try:
            return method(self, *args, **kwargs)
        except Exception as err:  # a display problem must never stop training
            self.disable(f"{self.name} display failed ({type(err).__name__}: {err}); "
                         "it is off for the rest of this run")
            return None

    return wrapper  # type: ignore[return-value]


class DisplayBackend:
    """What the visualizer sends to a live display. Images are HxWx3 uint8 arrays."""

    name = "display"

    def __init__(self) -> None:
        self.enabled = True

    def show_images(self, visuals: Images, epoch: int, total_iters: int) -> None:
        """Show the current visuals (replacing the previous ones)."""

    def plot_losses(self, epoch_frac: float, losses: dict[str, float],
                    total_iters: Optional[int] = None) -> None:
        """Add one point per loss at ``epoch_frac`` (epoch + fraction of the epoch done)."""

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """Record validation metrics at iteration ``step``."""

    def close(self) -> None:
        """Flush and release whatever the back end holds."""

    def disable(self, reason: str) -> None:
        """Print ``reason`` once on stderr and ignore every later call."""
        if self.enabled:
            self.enabled = False
            print(f"warning: {reason}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- visdom

def image_grid(images: list[np.ndarray], ncols: int, padding: int = 2) -> np.ndarray:
    """Tile HxWx3 uint8 images row by row, ``ncols`` per row, on a white background."""
    height = max(image.shape[0] for image in images) + 2 * padding
    width = max(image.shape[1] for image in images) + 2 * padding
    nrows = -(-len(images) // ncols)
    grid = np.full((nrows * height, ncols * width, 3), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        top = (i // ncols) * height + padding
        left = (i % ncols) * width + padding
        grid[top:top + image.shape[0], left:left + image.shape[1]] = image
    return grid


class _VisdomLines:
    """One visdom line-plot window that grows by appending a point per call."""

    def __init__(self, client: Any, env: str, win: str, title: str, xlabel: str) -> None:
        self.client, self.env, self.win = client, env, win
        self.opts = {"title": title, "xlabel": xlabel, "ylabel": "value"}
        self.names: list[str] = []
        self.points: list[tuple[float, dict[str, float]]] = []

    def add(self, x: float, values: dict[str, float]) -> None:
        self.points.append((float(x), dict(values)))
        names = list(values)
        if names == self.names:  # same lines as before: send just the new point
            xs = np.full((1, len(names)), float(x))
            ys = np.array([[float(values[n]) for n in names]])
            self.client.line(X=xs, Y=ys, win=self.win, env=self.env, update="append")
            return
        # new or changed set of lines: redraw the whole window
        self.names = names
        xs = np.array([[px] * len(names) for px, _ in self.points])
        ys = np.array([[pv.get(n, np.nan) for n in names] for _, pv in self.points], dtype=float)
        opts = dict(self.opts, legend=names)
        self.client.line(X=xs, Y=ys, win=self.win, env=self.env, opts=opts)


class VisdomBackend(DisplayBackend):
    """Current visuals as one image grid, losses and metrics as growing line plots.

    The server is checked once, with a short connection test; when it is not there the
    back end prints one warning and stays off. It never starts a server itself.
    """

    name = "visdom"

    def __init__(self, server: str = "http://localhost", port: int = 8097, env: str = "main",
                 ncols: int = 4, display_id: int = 1, winsize: int = 256, title: str = "",
                 timeout: float = 2.0) -> None:
        super().__init__()
        self.env, self.ncols, self.winsize = env, ncols, winsize
        self.title = title or env
        self.windows = {kind: f"{display_id}_{kind}"
                        for kind in ("losses", "images", "labels", "metrics")}
        url = server if "//" in server else f"http://{server}"
        self.address = f"{url}:{port}"
        try:
            import visdom
        except ImportError as err:
            raise UserError("--display_id > 0 needs the visdom package: pip install visdom "
                            "(or pass --display_id 0 to turn the live display off)") from err
        host = urlparse(url).hostname or "localhost"
        try:
            socket.create_connection((host, port), timeout=min(timeout, 1.0)).close()
            self.client = self._connect(visdom, url, port, timeout)
        except Exception as err:
            self.disable(f"no visdom server at {self.address} ({err}); start one with "
                         "`python -m visdom.server` or pass --display_id 0 to turn the live "
                         "display off; training goes on without it")
            return
        self.losses = _VisdomLines(self.client, env, self.windows["losses"],
                                   f"{self.title} loss over time", "epoch")
        self.metrics = _VisdomLines(self.client, env, self.windows["metrics"],
                                    f"{self.title} validation", "iteration")

    def _connect(self, visdom: Any, url: str, port: int, timeout: float) -> Any:
        class Client(visdom.Visdom):
            # visdom posts without a timeout; a hung server must not hang training
            def _handle_post(self, post_url: str, data: Any = None) -> str:
                return self.session.post(post_url, data=data or {}, timeout=timeout).text

        quiet = logging.getLogger("visdom")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # its "no incoming socket" notices are not for users
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return Client(server=url, port=port, env=self.env, raise_exceptions=True,
                              use_incoming_socket=False)
        finally:
            quiet.setLevel(level)

    @guarded
    def show_images(self, visuals: Images, epoch: int, total_iters: int) -> None:
        if not visuals:
            return
        caption = f"{self.title} epoch {epoch}, iteration {total_iters}"
        labels = list(visuals)
        if self.ncols <= 0:  # one window per image
            for label, image in visuals.items():
                self.client.image(image.transpose(2, 0, 1), win=f"{self.windows['images']}_{label}",
                                  env=self.env, opts={"title": f"{label} ({caption})",
                                                      "width": self.winsize,
                                                      "height": self.winsize})
            return
        ncols = min(self.ncols, len(labels))
        grid = image_grid(list(visuals.values()), ncols)
        # sent as uint8, so visdom does not rescale it (its grid helper would for dark images)
        self.client.image(grid.transpose(2, 0, 1), win=self.windows["images"], env=self.env,
                          opts={"title": f"{self.title} images", "caption": caption})
        rows = [labels[i:i + ncols] for i in range(0, len(labels), ncols)]
        table = "".join("<tr>" + "".join(f"<td>{escape(label)}</td>" for label in row) + "</tr>"
                        for row in rows)
        self.client.text(f"<p>{escape(caption)}</p><table>{table}</table>", win=self.windows["labels"],
                         env=self.env, opts={"title": f"{self.title} labels"})

    @guarded
    def plot_losses(self, epoch_frac: float, losses: dict[str, float],
                    total_iters: Optional[int] = None) -> None:
        if losses:
            self.losses.add(epoch_frac, losses)

    @guarded
    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        if numbers:
            self.metrics.add(step, numbers)


# ------------------------------------------------------------------ TensorBoard, W&B

class TensorboardBackend(DisplayBackend):
    """Images, losses and metrics as TensorBoard summaries under ``log_dir``."""

    name = "tensorboard"

    def __init__(self, log_dir: str) -> None:
        super().__init__()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise UserError("--use_tensorboard needs the tensorboard package: "
                            "pip install tensorboard") from err
        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.step = 0  # used when the caller gives no iteration count

    def _step(self, total_iters: Optional[int]) -> int:
        if total_iters is not None:
            self.step = int(total_iters)
        return self.step

    @guarded
    def show_images(self, visuals: Images, epoch: int, total_iters: int) -> None:
        step = self._step(total_iters)
        for label, image in visuals.items():
            self.writer.add_image(f"visuals/{label}", image, step, dataformats="HWC")

    @guarded
    def plot_losses(self, epoch_frac: float, losses: dict[str, float],
                    total_iters: Optional[int] = None) -> None:
        step = self._step(total_iters)
        self.writer.add_scalar("epoch", epoch_frac, step)
        for name, value in losses.items():
            self.writer.add_scalar(f"loss/{name}", value, step)

    @guarded
    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            if isinstance(value, (int, float)):
                self.writer.add_scalar(f"val/{name}", value, self._step(step))

    @guarded
    def close(self) -> None:
        self.writer.close()


class WandbBackend(DisplayBackend):
    """Images, losses and metrics logged to a Weights & Biases run."""

    name = "wandb"

    def __init__(self, project: str, run_name: str, config: Optional[dict] = None) -> None:
        super().__init__()
        try:
            import wandb
        except ImportError as err:
            raise UserError("--use_wandb needs the wandb package: pip install wandb") from err
        self.wandb = wandb
        self.run = wandb.run or wandb.init(project=project, name=run_name, config=config or {})

    @guarded
    def show_images(self, visuals: Images, epoch: int, total_iters: int) -> None:
        logged: dict[str, Any] = {f"visuals/{k}": self.wandb.Image(v) for k, v in visuals.items()}
        self.run.log({**logged, "epoch": epoch, "total_iters": total_iters})

    @guarded
    def plot_losses(self, epoch_frac: float, losses: dict[str, float],
                    total_iters: Optional[int] = None) -> None:
        extra = {} if total_iters is None else {"total_iters": total_iters}
        self.run.log({**{f"loss/{k}": v for k, v in losses.items()}, "epoch": epoch_frac, **extra})

    @guarded
    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log({**{f"val/{k}": v for k, v in metrics.items()}, "total_iters": step})

    @guarded
    def close(self) -> None:
        self.run.finish()


def plain_options(opt: Any) -> dict[str, Any]:
    """The options as a JSON-friendly dict."""
    items = vars(opt).items() if hasattr(opt, "__dict__") else dict(opt).items()
    return {k: v if isinstance(v, (bool, int, float, str, type(None))) else str(v)
            for k, v in sorted(items)}


@dataclass(frozen=True)
class DisplayEntry:
    """A display back end: its class, whether the options switch it on, and its arguments."""

    backend: type
    wanted: Callable[[Any], bool]
    arguments: Callable[[Any], dict]


BACKENDS = Registry("display back end")
BACKENDS.add("visdom", DisplayEntry(
    VisdomBackend, lambda opt: opt.display_id > 0,
    lambda opt: dict(server=opt.display_server, port=opt.display_port, env=opt.display_env,
                     ncols=opt.display_ncols, display_id=opt.display_id, winsize=opt.display_winsize,
                     title=opt.name)))
BACKENDS.add("tensorboard", DisplayEntry(
    TensorboardBackend, lambda opt: bool(opt.use_tensorboard),
    lambda opt: dict(log_dir=str(Path(opt.checkpoints_dir) / opt.name / "tensorboard"))))
BACKENDS.add("wandb", DisplayEntry(
    WandbBackend, lambda opt: bool(opt.use_wandb),
    lambda opt: dict(project=opt.wandb_project_name, run_name=opt.name, config=plain_options(opt))))


def make_backend(name: str, **kwargs: Any) -> DisplayBackend:
    """Build the back end registered as ``name`` from plain keyword arguments."""
    return BACKENDS.get(name).backend(**kwargs)
