"""The demo page (app.py) in a real browser: headless Chromium through selenium uploads a
maps photo, and the page's translation is the Translator's, at the photo's size."""

from __future__ import annotations

import shutil
import socket
import sys
import urllib.request
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

import train
from pix2cycle import Translator
from tests.conftest import SHARED_DATASETS
from tests.helpers import tiny_args

CHROMEDRIVER = shutil.which("chromedriver")
BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def load_app():
    import importlib

    return importlib.import_module("app")


def test_missing_gradio_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    assert load_app().main(["--name", "absent", "--checkpoints_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: the demo page needs gradio, not installed here: pip install -r requirements-app.txt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def maps_photo(tmp_path: Path) -> Path:
    """A real maps photo (the A half of a ../shared maps pair), else a demo image; cropped to
    an odd size that the generator must pad."""
    pairs = sorted((SHARED_DATASETS / "maps" / "val").glob("*.jpg"))[:1]
    if pairs:
        image = Image.open(pairs[0]).convert("RGB")
        image = image.crop((0, 0, image.width // 2, image.height)).resize((150, 101))
    else:
        image = Image.new("RGB", (150, 101), (90, 140, 60))
    path = tmp_path / "photo.png"
    image.save(path)
    return path


@pytest.mark.extended
@pytest.mark.skipif(CHROMEDRIVER is None or BROWSER is None, reason="chromium and chromedriver not installed")
def test_upload_in_chromium_gives_the_translators_image(cycle_run, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported
    pytest.importorskip("gradio")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    app = load_app()
    port = free_port()
    args = app.build_parser().parse_args(["--name", "cyc", "--checkpoints_dir", str(cycle_run), "--port", str(port),
                                          "--gpu_ids", "-1"])
    translators = app.load_translators(args)
    assert list(translators) == ["AtoB", "BtoA"]  # CycleGAN: a generator per direction
    demo = app.build_demo(args, translators)
    app.launch(demo, args, block=False)
    photo = maps_photo(tmp_path)
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 120)
        upload = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#input input[type=file]")))
        upload.send_keys(str(photo))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#input img")))
        driver.find_element(By.XPATH, "//label[.//span[text()='BtoA'] or text()='BtoA']").click()
        driver.find_element(By.ID, "translate").click()
        shown = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#translation img")))
        src = shown.get_attribute("src")
        link = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#download a"))).get_attribute("href")
        fetched = [Image.open(BytesIO(urllib.request.urlopen(url, timeout=30).read())).convert("RGB")
                   for url in (src, link)]
    finally:
        driver.quit()
        demo.close()
    expected = Translator.from_checkpoint(cycle_run / "cyc", device="cpu", direction="BtoA")(Image.open(photo))
    for image in fetched:
        assert image.size == Image.open(photo).size
        assert image.tobytes() == expected.tobytes()


@pytest.fixture(scope="module")
def cycle_run(unaligned_dataroot, tmp_path_factory) -> Path:
    checkpoints = tmp_path_factory.mktemp("app_run")
    assert train.main(tiny_args("cycle_gan", unaligned_dataroot, checkpoints, "cyc", "--n_epochs", "1",
                                "--n_epochs_decay", "0", "--no_html", "--max_dataset_size", "2",
                                "--display_freq", "100000", "--print_freq", "100000")) == 0
    return checkpoints
