"""Static HTML pages: the result gallery written by ``test.py`` and the training page.

This module knows nothing of torch, options or display servers: it takes file names,
labels and numbers, and writes plain HTML next to the images it shows. Every link is a
relative, URL-quoted path, so a results folder can be zipped, moved or served as is.

Pages are written atomically (temporary file, then rename), so a browser or a sync tool
never sees half a page, and ``save()`` may be called as often as wanted.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence, Union
from urllib.parse import quote

import dominate
from dominate import tags
from dominate.util import raw

PathLike = Union[str, Path]
_DRIVE = re.compile(r"^[A-Za-z]:/")  # a Windows absolute path
ImageList = Sequence[tuple[str, str]]

_CSS = """
body { font-family: sans-serif; margin: 1em; }
table.summary td, table.metrics td, table.metrics th { padding: 2px 10px; }
table.gallery { border-collapse: collapse; }
table.gallery td { padding: 4px; vertical-align: top; text-align: center; }
tr.row { border-top: 1px solid #ccc; }
td.name { text-align: left; word-break: break-all; max-width: 16em; }
p.label { margin: 2px 0 0 0; font-size: 90%; }
td.scores { text-align: left; white-space: nowrap; font-size: 90%; }
nav.pager { margin: 0.6em 0; }
nav.pager a, nav.pager span { margin-right: 0.5em; }
div.entry { margin-bottom: 1em; }
div.entry td { padding: 4px; text-align: center; vertical-align: top; }
"""


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def href(relpath: str) -> str:
    """Check that ``relpath`` is relative and inside the page folder; return it URL-quoted."""
    text = str(relpath).replace("\\", "/")
    posix = PurePosixPath(text)
    if posix.is_absolute() or _DRIVE.match(text) or ".." in posix.parts:
        raise ValueError(f"image path must be relative to the page folder: {relpath!r}")
    return quote(posix.as_posix(), safe="/")


@dataclass(frozen=True)
class Note:
    """A short value with its explanation shown on hover (the cell's title attribute)."""

    text: str
    title: str


def _format_value(value: Union[str, float, int, Note]) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Note):
        return value.text
    return str(value)


def _new_document(title: str, refresh: int) -> dominate.document:
    doc = dominate.document(title=title)
    with doc.head:
        tags.meta(charset="utf-8")
        if refresh > 0:
            tags.meta(http_equiv="refresh", content=str(refresh))
        tags.style(raw(_CSS))
    return doc


def _image_cell(label: str, relpath: str, width: int) -> None:
    """One image, linked to its full-size file, with its label underneath."""
    with tags.td():
        url = href(relpath)
        with tags.a(href=url):
            tags.img(src=url, width=width, alt=label)
        tags.p(label, cls="label")


def _key_value_table(values: dict, cls: str) -> None:
    with tags.table(cls=cls):
        for key, value in values.items():
            with tags.tr():
                tags.td(str(key))
                tags.td(_format_value(value), **({"title": value.title} if isinstance(value, Note) else {}))


def page_file(page: int) -> str:
    """File name of page ``page`` (1-based): ``index.html``, ``index_2.html``, ..."""
    return "index.html" if page == 1 else f"index_{page}.html"


class Gallery:
    """A paged table of results: one row per input, its images side by side.

    ``root/index.html`` is the first page, ``index_2.html`` ... follow when there are more
    than ``per_page`` rows; every page links to the previous, the next and all pages.
    Images are expected under ``root/images/`` (``images_dir``) and are given to
    ``add_row`` as paths relative to ``root``.
    """

    def __init__(self, root: PathLike, title: str, per_page: int = 200, refresh: int = 0,
                 width: int = 256) -> None:
        if per_page < 1:
            raise ValueError("per_page must be at least 1")
        self.root = Path(root)
        self.images_dir = self.root / "images"
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.title = title
        self.per_page = per_page
        self.refresh = refresh
        self.width = width
        self.header = ""
        self.summary: dict[str, Union[str, float]] = {}
        self.rows: list[tuple[str, list[tuple[str, str]], dict[str, float]]] = []
        self._written_pages = 0  # pages on disk after the last save
        self._dirty: set[int] = set()  # pages whose rows changed since the last save

    @property
    def num_pages(self) -> int:
        return max(1, -(-len(self.rows) // self.per_page))

    def add_row(self, name: str, images: ImageList, scores: dict[str, float] | None = None) -> None:
        """Add one input: its file name, its (label, relative path) images, optional scores."""
        checked = [(str(label), str(path)) for label, path in images]
        for _, path in checked:
            href(path)  # fail now, not at save time
        self.rows.append((str(name), checked, dict(scores or {})))
        self._dirty.add(self.num_pages)

    def set_summary(self, summary: dict[str, Union[str, float, Note]]) -> None:
        """Key figures (e.g. metric means) shown at the top of every page; a ``Note`` shows
        its short text with its explanation on hover."""
        self.summary = dict(summary)
        self._written_pages = 0  # every page shows it

    def set_header(self, text: str) -> None:
        """A line of text shown under the title on every page."""
        self.header = str(text)
        self._written_pages = 0

    def save(self) -> None:
        """Write the pages that changed (all of them when the page count or summary did)."""
        pages = self.num_pages
        if pages != self._written_pages:
            todo: Iterable[int] = range(1, pages + 1)
        else:
            todo = sorted(self._dirty)
        for page in todo:
            write_text_atomic(self.root / page_file(page), self._render(page, pages))
        self._written_pages = pages
        self._dirty.clear()

    def _render(self, page: int, pages: int) -> str:
        doc = _new_document(self.title if pages == 1 else f"{self.title} ({page}/{pages})",
                            self.refresh)
        first = (page - 1) * self.per_page
        rows = self.rows[first:first + self.per_page]
        with doc:
            tags.h1(self.title)
            if self.header:
                tags.p(self.header, cls="header")
            if self.summary:
                _key_value_table(self.summary, "summary")
            self._pager(page, pages)
            with tags.table(cls="gallery"):
                for name, images, scores in rows:
                    with tags.tr(cls="row"):
                        tags.td(name, cls="name")
                        for label, path in images:
                            _image_cell(label, path, self.width)
                        if scores:
                            with tags.td(cls="scores"):
                                for key, value in scores.items():
                                    tags.div(f"{key}: {_format_value(value)}")
            self._pager(page, pages)
        return doc.render(pretty=False)

    @staticmethod
    def _pager(page: int, pages: int) -> None:
        if pages <= 1:
            return
        with tags.nav(cls="pager"):
            if page > 1:
                tags.a("« prev", href=page_file(page - 1), rel="prev")
            for other in range(1, pages + 1):
                if other == page:
                    tags.span(str(other), cls="current")
                else:
                    tags.a(str(other), href=page_file(other))
            if page < pages:
                tags.a("next »", href=page_file(page + 1), rel="next")


class TrainingPage:
    """The training web page: loss curves, validation metrics, options and saved visuals.

    Entries are grouped by epoch and shown newest first. The page state is kept in
    ``root/page_state.json`` so that a resumed run can ``restore()`` what came before.
    """

    STATE_FILE = "page_state.json"

    def __init__(self, root: PathLike, title: str, refresh: int = 0, width: int = 256) -> None:
        self.root = Path(root)
        self.images_dir = self.root / "images"
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.title = title
        self.refresh = refresh
        self.width = width
        self.options_text = ""
        self.loss_plot: str | None = None
        self.visuals: dict[tuple[int, int], list[tuple[str, str]]] = {}
        self.metrics: dict[tuple[int, int], dict[str, float]] = {}

    def add_visuals(self, epoch: int, total_iters: int, images: ImageList) -> None:
        """Record the (label, relative path) images saved at this epoch and iteration."""
        checked = [(str(label), str(path)) for label, path in images]
        for _, path in checked:
            href(path)
        self.visuals[(int(epoch), int(total_iters))] = checked

    def add_metrics(self, epoch: int, total_iters: int, metrics: dict[str, float]) -> None:
        """Record validation metrics; they are listed in a table, newest first."""
        self.metrics[(int(epoch), int(total_iters))] = dict(metrics)

    def set_options_text(self, text: str) -> None:
        """The run's resolved options, shown folded in a <details> element."""
        self.options_text = text

    def set_loss_plot(self, relpath: str) -> None:
        """Show the loss-curve image at ``relpath`` (relative to the page folder)."""
        href(relpath)
        self.loss_plot = relpath

    def restore(self) -> bool:
        """Load the entries of an earlier run from the state file; False if there is none."""
        try:
            state = json.loads((self.root / self.STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        for epoch, iters, images in state.get("visuals", []):
            kept = [(label, path) for label, path in images if (self.root / path).is_file()]
            if kept:  # pictures deleted since are left out rather than shown broken
                self.visuals[(epoch, iters)] = kept
        for epoch, iters, metrics in state.get("metrics", []):
            self.metrics[(epoch, iters)] = metrics
        if self.loss_plot is None and state.get("loss_plot"):
            self.loss_plot = state["loss_plot"]
        return True

    def save(self) -> None:
        """Write ``index.html`` and the state file."""
        state = {
            "visuals": [[e, i, images] for (e, i), images in sorted(self.visuals.items())],
            "metrics": [[e, i, m] for (e, i), m in sorted(self.metrics.items())],
            "loss_plot": self.loss_plot,
        }
        write_text_atomic(self.root / self.STATE_FILE, json.dumps(state))
        write_text_atomic(self.root / "index.html", self._render())

    def _render(self) -> str:
        doc = _new_document(self.title, self.refresh)
        with doc:
            tags.h1(self.title)
            if self.loss_plot:
                with tags.div(cls="losses"):
                    tags.h2("Losses")
                    tags.img(src=href(self.loss_plot), alt="loss curves", cls="loss-plot")
            if self.metrics:
                self._metrics_table()
            if self.options_text:
                with tags.details(cls="options"):
                    tags.summary("Options")
                    tags.pre(self.options_text)
            self._visuals_by_epoch()
        return doc.render(pretty=False)

    def _metrics_table(self) -> None:
        names: list[str] = []
        for values in self.metrics.values():
            names.extend(n for n in values if n not in names)
        tags.h2("Validation")
        with tags.table(cls="metrics"):
            with tags.tr():
                for head in ["epoch", "iters", *names]:
                    tags.th(head)
            for (epoch, iters), values in sorted(self.metrics.items(), reverse=True):
                with tags.tr():
                    tags.td(str(epoch))
                    tags.td(str(iters))
                    for name in names:
                        tags.td(_format_value(values[name]) if name in values else "")

    def _visuals_by_epoch(self) -> None:
        current_epoch = None
        for (epoch, iters), images in sorted(self.visuals.items(), reverse=True):
            if epoch != current_epoch:
                tags.h2(f"Epoch {epoch}", cls="epoch")
                current_epoch = epoch
            with tags.div(cls="entry"):
                tags.h3(f"epoch {epoch}, iteration {iters}")
                with tags.table():
                    with tags.tr():
                        for label, path in images:
                            _image_cell(label, path, self.width)
