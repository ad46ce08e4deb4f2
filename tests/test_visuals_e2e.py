"""End to end: what real ``train.main`` / ``test.main`` runs show to people.

The training page and the test gallery are opened in headless Chromium (every image
loaded, one gallery row per input); the live display goes to a real local visdom server;
missing or unreachable display back ends must neither stop nor break training.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import socket
import sys
from pathlib import Path

import pytest
from PIL import Image

import test as test_script
import train as train_script
from tests.conftest import SHARED_DATASETS
from tests.helpers import tiny_args
from tests.test_browser import BROWSER, render

needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no chromium to render the pages: apt-get install chromium (.ci/run installs it)")
LOSS_NAMES = ["G_GAN", "G_L1", "D_real", "D_fake"]
VISUALS = ["real_A", "fake_B", "real_B"]
# Test inputs with names that must be escaped in HTML and quoted in links.
ODD_NAMES = ["plain.png", "with space.png", "a&b <c> #1.png", "café.png"]



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_args(dataroot: Path, checkpoints: Path, name: str, *extra: str) -> list:
    """pix2pix on 4 images for 2 epochs: losses every 2, page entries every 4 images."""
    return tiny_args("pix2pix", dataroot, checkpoints, name, "--n_epochs", "1", "--n_epochs_decay", "1",
                     "--max_dataset_size", "4", "--print_freq", "2", "--display_freq", "2",
                     "--update_html_freq", "4", "--seed", "1", *extra)


def gallery_args(dataroot: Path, checkpoints: Path, results: Path, name: str, *extra: str) -> list:
    return ["--dataroot", str(dataroot), "--name", name, "--model", "pix2pix", "--checkpoints_dir",
            str(checkpoints), "--results_dir", str(results), "--gpu_ids", "-1", "--num_threads", "0", *extra]


def assert_all_loaded(seen: dict) -> None:
    assert seen["images"], "no images on the page"
    broken = [image["src"] for image in seen["images"] if not image["ok"]]
    assert not broken, f"images that did not load in the browser: {broken}"


@pytest.fixture(scope="module")
def dataroot(aligned_dataroot, tmp_path_factory) -> Path:
    """4 training pairs; test pairs named like real users' files."""
    root = tmp_path_factory.mktemp("odd_names")
    shutil.copytree(aligned_dataroot / "train", root / "train")
    (root / "test").mkdir()
    for source, name in zip(sorted((aligned_dataroot / "test").iterdir()), ODD_NAMES):
        shutil.copy(source, root / "test" / name)
    return root


@pytest.fixture(scope="module")
def trained(dataroot, tmp_path_factory) -> Path:
    """A finished two-epoch run; returns its checkpoints folder (run name ``e2e``)."""
    checkpoints = tmp_path_factory.mktemp("checkpoints")
    assert train_script.main(run_args(dataroot, checkpoints, "e2e")) == 0
    return checkpoints


@needs_browser
def test_training_page_renders_with_visuals_and_loss_curves(trained, tmp_path):
    run = trained / "e2e"
    web = run / "web"
    html = (web / "index.html").read_text(encoding="utf-8")
    # entries every --update_html_freq images, newest first, grouped by epoch, labelled
    assert re.findall(r"<h3>epoch (\d+), iteration (\d+)</h3>", html) == [("2", "8"), ("1", "4")]
    assert re.findall(r'<h2 class="epoch">Epoch (\d+)</h2>', html) == ["2", "1"]
    for label in VISUALS:
        assert f'<p class="label">{label}</p>' in html
    assert "<details" in html and "update_html_freq: 4" in html  # the resolved options

    seen = render(web / "index.html", tmp_path / "profile")
    assert_all_loaded(seen)
    sources = [image["src"] for image in seen["images"]]
    assert sources.count("losses.png") == 1
    assert len(sources) == 1 + 2 * len(VISUALS)

    # the loss history behind the curves: x = epoch + fraction of the epoch done
    rows = [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]
    assert [row["epoch_frac"] for row in rows] == [1.5, 2.0, 2.5, 3.0]
    assert all(set(LOSS_NAMES) <= set(row) for row in rows)
    txt = (run / "loss_log.txt").read_text().splitlines()
    assert sum(line.startswith("(epoch: ") for line in txt) == 4


def test_page_follows_update_html_freq_alone_and_no_html_turns_it_off(dataroot, tmp_path):
    ckpt = tmp_path / "c"
    assert train_script.main(run_args(dataroot, ckpt, "rare_display", "--display_freq", "100")) == 0
    html = (ckpt / "rare_display" / "web" / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<h3>epoch (\d+), iteration (\d+)</h3>", html) == [("2", "8"), ("1", "4")]
    assert train_script.main(run_args(dataroot, ckpt, "quiet", "--no_html")) == 0
    assert not (ckpt / "quiet" / "web").exists()
    assert (ckpt / "quiet" / "loss_log.jsonl").is_file()


@needs_browser
def test_resumed_run_appends_to_logs_and_page(trained, dataroot, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    shutil.copytree(trained / "e2e", checkpoints / "e2e")
    args = run_args(dataroot, checkpoints, "e2e", "--n_epochs", "2", "--continue_train")
    assert train_script.main(args) == 0
    run = checkpoints / "e2e"
    txt = (run / "loss_log.txt").read_text().splitlines()
    assert sum(line.startswith("================ Training Loss") for line in txt) == 2
    rows = [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]
    assert [row["epoch_frac"] for row in rows] == [1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    html = (run / "web" / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<h3>epoch (\d+), iteration (\d+)</h3>", html) == [("3", "12"), ("2", "8"), ("1", "4")]
    seen = render(run / "web" / "index.html", tmp_path / "profile")
    assert_all_loaded(seen)
    assert len(seen["images"]) == 1 + 3 * len(VISUALS)


@needs_browser
def test_gallery_one_row_per_input_renders_anywhere(trained, dataroot, tmp_path):
    results = tmp_path / "results"
    args = gallery_args(dataroot, trained, results, "e2e", "--crop_size", "128", "--display_winsize", "96",
                     "--aspect_ratio", "2.0")
    assert test_script.main(args) == 0
    folder = results / "e2e" / "test_latest"
    html = (folder / "index.html").read_text(encoding="utf-8")
    assert "a&amp;b &lt;c&gt; #1.png" in html and "a%26b%20%3Cc%3E%20%231_fake_B.png" in html
    assert html.count('width="96"') == len(ODD_NAMES) * len(VISUALS)
    with Image.open(folder / "images" / "plain_fake_B.png") as image:  # PNG, widened by --aspect_ratio
        assert image.format == "PNG" and image.size == (256, 128)

    # relative links: the folder still works after it is moved somewhere else
    moved = tmp_path / "elsewhere" / "gallery"
    shutil.copytree(folder, moved)
    shutil.rmtree(results)
    seen = render(moved / "index.html", tmp_path / "profile")
    assert_all_loaded(seen)
    assert seen["rows"] == len(ODD_NAMES)
    assert len(seen["images"]) == len(ODD_NAMES) * len(VISUALS)
    names = re.findall(r'<td class="name">(.*?)</td>', html)
    assert sorted(names) == sorted(n.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                                   for n in ODD_NAMES)


# ------------------------------------------------------------------------------ visdom

@pytest.fixture(scope="module")
def visdom_port(tmp_path_factory):
    pytest.importorskip("visdom")
    from tests.test_display import start_server, stop_server

    proc, port = start_server(tmp_path_factory)
    yield port
    stop_server(proc)


@pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")
def test_visdom_windows_after_a_real_training_run(dataroot, visdom_port, tmp_path, capsys):
    from tests.test_display import client, window

    env = "e2e_train"
    args = run_args(dataroot, tmp_path / "c", "vis", "--display_id", "1", "--display_port", str(visdom_port),
                    "--display_server", "http://127.0.0.1", "--display_env", env, "--display_ncols", "2")
    assert train_script.main(args) == 0
    assert "warning" not in capsys.readouterr().err

    viz = client(visdom_port, env)
    for win in ("1_images", "1_labels", "1_losses"):
        assert viz.win_exists(win, env=env), win
    images = window(visdom_port, env, "1_images")
    assert images["content"]["caption"] == "vis epoch 2, iteration 8"
    png = base64.b64decode(images["content"]["src"].split(",", 1)[1])
    with Image.open(io.BytesIO(png)) as grid:  # 3 visuals of 128 px, 2 per row, 2 px padding
        assert grid.size == (2 * 132, 2 * 132)
    labels = window(visdom_port, env, "1_labels")["content"]
    assert all(f"<td>{label}</td>" in labels for label in VISUALS)

    # the loss plot holds the same numbers as the run's loss log
    traces = {trace["name"]: trace for trace in window(visdom_port, env, "1_losses")["content"]["data"]}
    assert list(traces) == LOSS_NAMES
    rows = [json.loads(line) for line in (tmp_path / "c" / "vis" / "loss_log.jsonl").read_text().splitlines()]
    for name in LOSS_NAMES:
        assert traces[name]["x"] == [row["epoch_frac"] for row in rows]
        assert traces[name]["y"] == pytest.approx([row[name] for row in rows])


def test_unreachable_visdom_warns_once_and_training_completes(dataroot, tmp_path, capsys):
    pytest.importorskip("visdom")
    args = run_args(dataroot, tmp_path / "c", "novis", "--display_id", "1", "--display_port", str(free_port()))
    assert train_script.main(args) == 0
    captured = capsys.readouterr()
    assert captured.err.count("warning: ") == 1, captured.err
    assert "no visdom server at" in captured.err and "--display_id 0" in captured.err
    assert "End of epoch 2 / 2" in captured.out and "training done: 8 images seen" in captured.out
    run = tmp_path / "c" / "novis"
    assert (run / "latest_checkpoint.pth").is_file() and (run / "web" / "losses.png").is_file()


# ------------------------------------------------------------------ optional back ends

@pytest.mark.parametrize("flag, module, package", [("--use_wandb", "wandb", "wandb"),
                                                   ("--use_tensorboard", "torch.utils.tensorboard", "tensorboard")])
def test_missing_logger_package_is_one_line_and_exit_2(flag, module, package, dataroot, tmp_path, capsys,
                                                       monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
    assert train_script.main(run_args(dataroot, tmp_path / "c", "x", flag)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {flag} needs the {package} package: pip install {package}"]


def test_summary_block_plain_progress_and_no_display_imports(tmp_path, capsys, monkeypatch):
    """Not a terminal: one summary block, then plain progress lines; and no live display
    package is imported when none was asked for (importing one here would fail)."""
    for module in ("visdom", "wandb", "tensorboard", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, module, None)
    root = tmp_path / "data"
    for domain, count, colour in (("A", 3, (200, 40, 40)), ("B", 5, (40, 40, 200))):
        (root / f"train{domain}").mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (36, 36), colour).save(root / f"train{domain}" / f"{i}.png")
    args = tiny_args("cycle_gan", root, tmp_path / "c", "cg", "--n_epochs", "1", "--n_epochs_decay", "0")
    assert train_script.main(args) == 0
    out = capsys.readouterr().out
    assert out.count("run summary") == 1 and out.index("run summary") < out.index("epoch 1/1")
    summary = out[out.index("run summary"):out.index("epoch 1/1")]
    assert "device" in summary and "cpu" in summary
    assert f"A: 3 in {root / 'trainA'}" in summary and f"B: 5 in {root / 'trainB'}" in summary
    assert all(f"net{name} " in summary for name in ("G_A", "G_B", "D_A", "D_B"))
    run = tmp_path / "c" / "cg"
    assert f"checkpoints : {run}" in summary and str(run / "web" / "index.html") in summary
    assert str(run / "loss_log.txt") in summary
    assert "\r" not in out and re.search(r"^epoch 1/1: 5 img in ", out, re.M)


# ---------------------------------------------------------------------------- real data

@needs_browser
def test_maps_val_gallery_of_100_images_renders(tmp_path):
    maps = SHARED_DATASETS / "maps"
    if not (maps / "val").is_dir():
        pytest.skip(f"real maps data not found at {maps}")
    inputs = sorted(p.name for p in (maps / "val").iterdir())
    ckpt, results = tmp_path / "c", tmp_path / "r"
    assert train_script.main(["--dataroot", str(maps), "--name", "maps", "--model", "pix2pix",
                              "--checkpoints_dir", str(ckpt), "--gpu_ids", "-1", "--num_threads", "0",
                              "--netG", "unet_128", "--ngf", "8", "--ndf", "8", "--load_size", "143",
                              "--crop_size", "128", "--n_epochs", "1", "--n_epochs_decay", "0",
                              "--max_dataset_size", "4", "--display_freq", "2", "--update_html_freq", "2",
                              "--print_freq", "2"]) == 0
    seen = render(ckpt / "maps" / "web" / "index.html", tmp_path / "profile")
    assert_all_loaded(seen)
    assert "losses.png" in [image["src"] for image in seen["images"]]

    assert test_script.main(gallery_args(maps, ckpt, results, "maps", "--phase", "val", "--crop_size", "128")) == 0
    gallery = results / "maps" / "val_latest" / "index.html"
    seen = render(gallery, tmp_path / "profile")
    assert_all_loaded(seen)
    assert seen["rows"] == len(inputs) == 100
    assert len(seen["images"]) == 100 * len(VISUALS)
    assert sorted(re.findall(r'<td class="name">(.*?)</td>', gallery.read_text(encoding="utf-8"))) == inputs
