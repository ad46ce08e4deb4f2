"""Console progress: a per-epoch bar and the start-of-run summary.

On a terminal the bar is a tqdm bar (images, images/s, ETA and the current losses). When
the output is not a terminal (CI logs, ``nohup``, a pipe) it prints a plain line every
~10% or every 30 seconds instead, so log files stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


def echo(message: str, stream: Optional[TextIO] = None) -> None:
    """Print a line without breaking an active progress bar."""
    stream = stream or sys.stdout
    try:
        from tqdm import tqdm
    except ImportError:
        print(message, file=stream, flush=True)
        return
    tqdm.write(message, file=stream)


def _format_losses(losses: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.3f}" for name, value in losses.items())


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Progress over ``total`` images of one epoch; ``update(n_images, losses)`` per batch.
    ``unit`` names what is counted when the items are not images ("patches", "volumes")."""

    def __init__(self, total: int, desc: str, enabled: bool = True,
                 stream: Optional[TextIO] = None, interval: float = 30.0,
                 tty: Optional[bool] = None, initial: int = 0, unit: str = "images") -> None:
        self.total = max(int(total), 0)
        self.desc = desc
        self.unit = "img" if unit == "images" else unit  # the reference's "img"
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self.interval = interval
        self.initial = self.done = int(initial)  # images done before (a resumed epoch)
        self.losses: dict[str, float] = {}
        self.start = time.monotonic()
        self._last_line = self.start
        self._next_percent = (100 * self.done // self.total // 10 + 1) * 10 if self.total else 10
        self._bar = None
        if enabled and (_is_tty(self.stream) if tty is None else tty):
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=self.total or None, desc=desc, unit=unit, file=self.stream,
                             dynamic_ncols=True, leave=True, smoothing=0.1, initial=self.done)

    def update(self, n_images: int, losses: Optional[dict[str, float]] = None) -> None:
        """Count ``n_images`` more images; show ``losses`` (the latest values) alongside."""
        self.done += n_images
        if losses:
            self.losses = {k: float(v) for k, v in losses.items()}
        if not self.enabled:
            return
        if self._bar is not None:
            if losses:
                self._bar.set_postfix_str(_format_losses(self.losses), refresh=False)
            self._bar.update(n_images)
            return
        now = time.monotonic()
        percent = 100 * self.done // self.total if self.total else 0
        if percent >= self._next_percent or now - self._last_line >= self.interval:
            self._next_percent = (percent // 10 + 1) * 10
            self._last_line = now
            self._print_line(now)

    def rate(self) -> float:
        """Images per second since this progress began."""
        elapsed = time.monotonic() - self.start
        return (self.done - self.initial) / elapsed if elapsed > 0 else 0.0

    def _print_line(self, now: float) -> None:
        rate = self.rate()
        parts = [f"{self.desc}: {self.done}/{self.total} {self.unit}"]
        if self.total:
            parts.append(f"({100 * self.done / self.total:.0f}%)")
        parts.append(f"{rate:.1f} {self.unit}/s")
        if rate > 0 and self.total > self.done:
            parts.append(f"ETA {_format_seconds((self.total - self.done) / rate)}")
        if self.losses:
            parts.append(_format_losses(self.losses))
        print(" ".join(parts), file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar (or print the closing line in plain mode)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled:
            elapsed = time.monotonic() - self.start
            print(f"{self.desc}: {self.done - self.initial} {self.unit} in {_format_seconds(elapsed)} "
                  f"({self.rate():.1f} {self.unit}/s)", file=self.stream, flush=True)
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def summary_block(lines: dict[str, str], title: str = "run summary") -> str:
    """Format ``{what: value}`` as an aligned block for the start of a run.

    For example ``{"device": "cuda:0", "dataset A": "1096 images", "netG_A": "11.378 M
    parameters", "checkpoints": "./checkpoints/horse2zebra"}``.
    """
    width = max((len(key) for key in lines), default=0)
    body = [f"{key.ljust(width)} : {value}" for key, value in lines.items()]
    rule_width = max([len(title) + 8, *(len(line) for line in body)])
    head = f" {title} ".center(rule_width, "-")
    return "\n".join([head, *body, "-" * rule_width])
