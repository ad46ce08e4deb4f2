"""Generated pages rendered in headless Chromium: every image loads, every row is there.

No selenium needed: a copy of each page, with a small script added, is loaded with
``--dump-dom``; the script writes what the browser saw into the DOM once the page loaded.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from reporting.html import Gallery, TrainingPage, page_file

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="chromium not installed: apt-get install chromium chromium-driver")

PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images].map(i => ({src: i.getAttribute("src"),
                                                 ok: i.complete && i.naturalWidth > 0}));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images, rows: document.querySelectorAll("tr.row").length});
  document.body.appendChild(out);
});
</script>"""

NAMES = ["plain.png", "with space.png", "odd <b> & #hash.png", "café.png", "x%41.png",
         "six.png", "seven.png"]


def render(page: Path, profile: Path) -> dict:
    """Load ``page`` (a probed copy beside it) in headless Chromium; return what it saw."""
    probed = page.with_name(f"_probe_{page.name}")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                      encoding="utf-8")
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    probed.unlink()
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"no probe output; stderr: {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def test_gallery_pages_load_every_image(tmp_path):
    root = tmp_path / "results" / "demo"
    gallery = Gallery(root, "demo results", per_page=5, width=64)
    for i, name in enumerate(NAMES):
        images = []
        for label in ("real_A", "fake_B"):
            rel = f"images/{Path(name).stem}_{label}.png"
            Image.new("RGB", (32, 32), (30 * i, 80, 160)).save(root / rel)
            images.append((label, rel))
        gallery.add_row(name, images, scores={"L1": 0.1 * i})
    gallery.set_summary({"L1 mean": 0.3})
    gallery.save()

    rows = 0
    for page in (1, 2):
        seen = render(root / page_file(page), tmp_path / "profile")
        assert seen["images"], "no images on the page"
        broken = [image["src"] for image in seen["images"] if not image["ok"]]
        assert not broken, f"images that did not load: {broken}"
        rows += seen["rows"]
    assert rows == len(NAMES)


def test_training_page_loads_every_image(tmp_path):
    web = tmp_path / "web"
    page = TrainingPage(web, "Experiment name = demo", width=64)
    for epoch in (1, 2, 3):
        saved = []
        for label in ("real_A", "fake_B", "rec_A"):
            rel = f"images/epoch{epoch:03d}_iter{epoch * 10}_{label}.png"
            Image.new("RGB", (16, 16), (60 * epoch, 0, 0)).save(web / rel)
            saved.append((label, rel))
        page.add_visuals(epoch, epoch * 10, saved)
    Image.new("RGB", (80, 40), (255, 255, 255)).save(web / "losses.png")
    page.set_loss_plot("losses.png")
    page.set_options_text("name: demo")
    page.save()
    seen = render(web / "index.html", tmp_path / "profile")
    assert len(seen["images"]) == 10
    assert all(image["ok"] for image in seen["images"]), seen["images"]

    # the probe does notice a missing picture
    (web / "images" / "epoch002_iter20_fake_B.png").unlink()
    seen = render(web / "index.html", tmp_path / "profile")
    assert [i["src"] for i in seen["images"] if not i["ok"]] == ["images/epoch002_iter20_fake_B.png"]
