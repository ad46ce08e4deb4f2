"""The static pages: result gallery, training page and loss plot (no torch, no server)."""

from __future__ import annotations

import re
import shutil
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image

from reporting.html import Gallery, Note, TrainingPage, href, page_file
from reporting.plots import loss_series, plot_losses

ODD_NAME = "a <b> & c #1.png"


class _Links(HTMLParser):
    """Collects img src, a href, title attributes, text and row classes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.hrefs: list[str] = []
        self.rows = 0
        self.text: list[str] = []
        self.titles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "img":
            self.srcs.append(attrs["src"])
        if tag == "a":
            self.hrefs.append(attrs["href"])
        if tag == "tr" and attrs.get("class") == "row":
            self.rows += 1
        if "title" in attrs:
            self.titles.append(attrs["title"])

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(path: Path) -> _Links:
    links = _Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


def make_image(path: Path, color=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), color).save(path)


def make_gallery(root: Path, names: list[str], **kwargs) -> Gallery:
    gallery = Gallery(root, "results", **kwargs)
    for i, name in enumerate(names):
        images = []
        for label in ("real_A", "fake_B"):
            rel = f"images/{Path(name).stem}_{label}.png"
            make_image(root / rel, (i * 20 % 255, 40, 90))
            images.append((label, rel))
        gallery.add_row(name, images, scores={"L1": 0.5 + i})
    return gallery


def test_rows_labels_scores_and_summary(tmp_path):
    gallery = make_gallery(tmp_path, ["one.png", "two.png", "three.png"])
    gallery.set_summary({"L1 mean": 1.5, "images": "3"})
    gallery.set_header("horse2zebra, latest")
    gallery.save()
    page = parse(tmp_path / "index.html")
    text = " ".join(page.text)
    assert page.rows == 3
    assert len(page.srcs) == 6
    for expected in ("one.png", "real_A", "fake_B", "L1: 2.5", "L1 mean", "horse2zebra, latest"):
        assert expected in text
    assert not (tmp_path / "index_2.html").exists()


def test_summary_note_shows_its_short_text_and_the_reason_on_hover(tmp_path):
    gallery = make_gallery(tmp_path, ["one.png"])
    reason = "weights file 'x.pth' not found & <offline>; see docs/metrics.md"
    gallery.set_summary({"psnr": "23.41 ± 1.20", "lpips": Note("n/a", reason)})
    gallery.save()
    page = parse(tmp_path / "index.html")
    cells = [t for t in page.text if t.strip()]
    assert cells[cells.index("lpips") + 1] == "n/a" and "23.41 ± 1.20" in cells
    assert not any("not found" in t for t in page.text)  # the reason is not in the page's text...
    assert page.titles == [reason]  # ...but on the cell, escaped and read back intact


def test_odd_file_names_are_escaped_and_quoted(tmp_path):
    gallery = make_gallery(tmp_path, [ODD_NAME])
    gallery.save()
    html_text = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "<b>" not in html_text and "a &lt;b&gt; &amp; c #1.png" in html_text
    page = parse(tmp_path / "index.html")
    assert ODD_NAME in " ".join(page.text)
    for src in page.srcs:
        assert " " not in src and "#" not in src and "<" not in src and "&" not in src
        assert (tmp_path / unquote(src)).is_file()  # the quoted link finds the real file


def test_paths_are_relative_so_a_zipped_folder_opens_elsewhere(tmp_path):
    root = tmp_path / "results"
    make_gallery(root, ["x.png", ODD_NAME], per_page=1).save()
    archive = shutil.make_archive(str(tmp_path / "bundle"), "zip", root)
    elsewhere = tmp_path / "elsewhere"
    zipfile.ZipFile(archive).extractall(elsewhere)
    for page_path in elsewhere.glob("*.html"):
        text = page_path.read_text(encoding="utf-8")
        assert str(tmp_path) not in text and "file:" not in text
        links = parse(page_path)
        for link in links.srcs + links.hrefs:
            assert not link.startswith("/") and "://" not in link
            assert (elsewhere / unquote(link)).is_file(), link


@pytest.mark.parametrize("bad", ["/abs/x.png", "../x.png", "images/../../x.png", "C:\\x.png"])
def test_absolute_or_escaping_paths_are_refused(tmp_path, bad):
    with pytest.raises(ValueError):
        Gallery(tmp_path, "t").add_row("x", [("a", bad)])


def test_href_quotes_special_characters():
    assert href("images/a b#c&d<.png") == "images/a%20b%23c%26d%3C.png"
    assert href("images\\x.png") == "images/x.png"


def test_pagination_links_on_every_page(tmp_path):
    gallery = make_gallery(tmp_path, [f"img{i}.png" for i in range(5)], per_page=2)
    gallery.save()
    pages = [tmp_path / page_file(n) for n in (1, 2, 3)]
    assert [p.name for p in pages] == ["index.html", "index_2.html", "index_3.html"]
    assert not (tmp_path / "index_4.html").exists()
    counts = [parse(p).rows for p in pages]
    assert counts == [2, 2, 1]
    for n, page in enumerate(pages, start=1):
        hrefs = set(parse(page).hrefs)
        others = {page_file(k) for k in (1, 2, 3) if k != n}
        assert others <= hrefs  # a link to every other page
        text = page.read_text(encoding="utf-8")
        assert ('rel="prev"' in text) == (n > 1)
        assert ('rel="next"' in text) == (n < 3)


def test_save_again_after_more_rows_updates_every_page(tmp_path):
    gallery = make_gallery(tmp_path, ["a.png", "b.png"], per_page=2)
    gallery.save()
    assert "index_2.html" not in parse(tmp_path / "index.html").hrefs
    make_image(tmp_path / "images/c.png")
    gallery.add_row("c.png", [("real_A", "images/c.png")])
    gallery.save()
    assert "index_2.html" in parse(tmp_path / "index.html").hrefs
    assert parse(tmp_path / "index_2.html").rows == 1
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_five_thousand_rows_go_into_small_linked_pages(tmp_path):
    gallery = Gallery(tmp_path, "big")
    for i in range(5000):
        gallery.add_row(f"img_{i}.png", [(label, f"images/img_{i}_{label}.png")
                                         for label in ("real_A", "fake_B", "rec_A")],
                        scores={"L1": i / 5000})
    gallery.set_summary({"L1 mean": 0.5})
    gallery.save()
    pages = sorted(tmp_path.glob("index*.html"))
    assert len(pages) == 25
    assert max(p.stat().st_size for p in pages) < 300_000
    assert parse(tmp_path / "index_25.html").rows == 200


def test_refresh_meta(tmp_path):
    Gallery(tmp_path, "t", refresh=5).save()
    text = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<meta content="5" http-equiv="refresh">', text)
    Gallery(tmp_path, "t").save()
    assert "refresh" not in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_training_page_newest_first_with_options_and_plot(tmp_path):
    page = TrainingPage(tmp_path, "Experiment name = demo")
    for epoch, iters in [(1, 100), (1, 200), (2, 300), (3, 400)]:
        rel = f"images/epoch{epoch:03d}_iter{iters}_fake_B.png"
        make_image(tmp_path / rel)
        page.add_visuals(epoch, iters, [("fake_B", rel)])
    make_image(tmp_path / "losses.png")
    page.set_loss_plot("losses.png")
    page.set_options_text("name: demo\nlr: 0.0002 <x>")
    page.add_metrics(2, 300, {"FID": 41.5})
    page.save()
    text = (tmp_path / "index.html").read_text(encoding="utf-8")
    headings = re.findall(r"epoch (\d+), iteration (\d+)", text)
    assert headings == [("3", "400"), ("2", "300"), ("1", "200"), ("1", "100")]
    assert text.index("Epoch 3") < text.index("Epoch 2") < text.index("Epoch 1")
    assert "<details" in text and "lr: 0.0002 &lt;x&gt;" in text
    assert 'src="losses.png"' in text and "41.5" in text

    again = TrainingPage(tmp_path, "Experiment name = demo")
    assert again.restore()
    again.add_visuals(4, 500, [("fake_B", "images/epoch003_iter400_fake_B.png")])
    again.save()
    text = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"epoch (\d+), iteration", text) == ["4", "3", "2", "1", "1"]


def test_loss_plot_is_a_valid_png(tmp_path):
    history = [{"epoch": 1 + i // 4, "epoch_frac": 1 + i / 4, "iters": 10 * i,
                "G_GAN": 0.7 - i * 0.01, "D_real": 0.5, "time": 0.1} for i in range(12)]
    history[3]["G_idt"] = 0.2  # a loss that appears only sometimes
    path = tmp_path / "plots" / "losses.png"
    assert plot_losses(history, path, "demo loss over time")
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100
    assert set(loss_series(history)) == {"G_GAN", "D_real", "G_idt"}
    assert not plot_losses([], tmp_path / "empty.png", "nothing")
    assert not (tmp_path / "empty.png").exists()


def test_html_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, reporting.html, reporting.plots; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    assert out.stdout.strip() == "False"
