"""The training visualizer (logs, page, loss plot) and the console progress helpers."""

from __future__ import annotations

import io
import json
import re
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from reporting.progress import Progress, summary_block
from reporting.visualizer import Visualizer

LOSSES = {"G_GAN": 0.6931, "G_L1": 12.3454, "D_real": 0.6932, "D_fake": 0.69}


def options(tmp_path, **overrides) -> SimpleNamespace:
    opt = dict(name="demo", checkpoints_dir=str(tmp_path), isTrain=True, no_html=False,
               display_winsize=64, display_id=0, display_server="http://localhost",
               display_port=8097, display_env="main", display_ncols=4, use_wandb=False,
               wandb_project_name="p", use_tensorboard=False, continue_train=False)
    opt.update(overrides)
    return SimpleNamespace(**opt)


def visuals() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {"real_A": torch.rand(1, 3, 8, 8) * 2 - 1, "fake_B": torch.rand(1, 1, 8, 8) * 2 - 1}


def train_some(vis: Visualizer, epochs: range, steps: int = 4) -> None:
    for epoch in epochs:
        for step in range(1, steps + 1):
            total = (epoch - 1) * steps + step
            vis.print_current_losses(epoch, step, LOSSES, 0.1234, 0.0041, total_iters=total,
                                     epoch_frac=epoch + step / steps)
            vis.plot_current_losses(epoch, step / steps, LOSSES, total_iters=total)
        vis.display_current_results(visuals(), epoch, epoch * steps, save_result=True)


def test_loss_log_in_reference_format(tmp_path, capsys):
    vis = Visualizer(options(tmp_path))
    vis.print_current_losses(1, 100, LOSSES, 0.123, 0.004)
    lines = (tmp_path / "demo" / "loss_log.txt").read_text().splitlines()
    assert re.fullmatch(r"================ Training Loss \(.+\) ================", lines[0])
    expected = ("(epoch: 1, iters: 100, time: 0.123, data: 0.004) "
                "G_GAN: 0.693 G_L1: 12.345 D_real: 0.693 D_fake: 0.690 ")
    assert lines[1] == expected
    assert expected in capsys.readouterr().out


def test_jsonl_and_txt_are_appended_on_resume(tmp_path):
    vis = Visualizer(options(tmp_path))
    train_some(vis, range(1, 3))
    vis.close()
    resumed = Visualizer(options(tmp_path, continue_train=True))
    assert [row["epoch_frac"] for row in resumed.history][-1] == 3.0
    train_some(resumed, range(3, 4))
    resumed.log_metrics(3, 12, {"FID": 42.5, "note": "ok"})
    resumed.close()

    run = tmp_path / "demo"
    txt = (run / "loss_log.txt").read_text().splitlines()
    assert sum(line.startswith("================ Training Loss") for line in txt) == 2
    assert sum(line.startswith("(epoch: ") for line in txt) == 12
    rows = [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["kind"] == "train"]
    assert len(train) == 12
    assert train[0] == {"kind": "train", "epoch": 1, "epoch_frac": 1.25, "iters": 1,
                        "total_iters": 1, "time": 0.1234, "data": 0.0041, **LOSSES}
    assert train[-1]["total_iters"] == 12 and train[-1]["epoch_frac"] == 4.0
    val = [r for r in rows if r["kind"] == "val"]
    assert val == [{"kind": "val", "epoch": 3, "total_iters": 12, "FID": 42.5, "note": "ok"}]
    # the resumed page still lists the first run's visuals, newest first
    page = (run / "web" / "index.html").read_text()
    assert re.findall(r"epoch (\d+), iteration", page) == ["3", "2", "1"]
    assert "42.5" in page


def test_reference_style_calls_still_give_complete_jsonl_rows(tmp_path):
    vis = Visualizer(options(tmp_path))
    vis.display_current_results(visuals(), 2, 40, save_result=False)
    vis.print_current_losses(2, 10, LOSSES, 0.1, 0.01)  # no total_iters, no epoch_frac
    vis.plot_current_losses(2, 0.25, LOSSES)
    vis.print_current_losses(2, 20, LOSSES, 0.1, 0.01)
    vis.close()
    rows = [json.loads(line) for line in (tmp_path / "demo" / "loss_log.jsonl").open()]
    assert [(r["epoch_frac"], r["iters"], r["total_iters"]) for r in rows] == [
        (2.25, 10, 40), (None, 20, 40)]
    assert vis.history[-1]["epoch_frac"] == 2.25


def test_resume_from_an_earlier_point_replaces_the_later_history(tmp_path):
    vis = Visualizer(options(tmp_path))
    train_some(vis, range(1, 4), steps=2)
    resumed = Visualizer(options(tmp_path, continue_train=True))
    train_some(resumed, range(2, 3), steps=2)
    assert [row["epoch_frac"] for row in resumed.history] == [1.5, 2.0, 2.5, 3.0]


def test_training_page_images_and_loss_plot(tmp_path):
    vis = Visualizer(options(tmp_path))
    train_some(vis, range(1, 3), steps=2)
    vis.close()
    web = tmp_path / "demo" / "web"
    for name in ("epoch001_iter2_real_A.png", "epoch002_iter4_fake_B.png"):
        with Image.open(web / "images" / name) as image:
            assert image.size == (8, 8) and image.mode == "RGB"
    with Image.open(web / "losses.png") as image:
        image.verify()
    page = (web / "index.html").read_text()
    assert 'src="losses.png"' in page and "<details" in page and "display_winsize: 64" in page
    assert page.index("epoch002_iter4_real_A.png") < page.index("epoch001_iter2_real_A.png")
    assert 'width="64"' in page


def test_no_html_and_test_mode_write_no_page(tmp_path):
    Visualizer(options(tmp_path, no_html=True)).display_current_results(visuals(), 1, 1, True)
    assert not (tmp_path / "demo" / "web" / "index.html").exists()
    vis = Visualizer(options(tmp_path, name="t", isTrain=False))
    vis.print_current_losses(1, 1, LOSSES, 0.1, 0.1)
    vis.close()
    assert not (tmp_path / "t").exists()


def test_unreachable_visdom_does_not_stop_training(tmp_path, capsys):
    pytest.importorskip("visdom")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    vis = Visualizer(options(tmp_path, display_id=1, display_port=port))
    train_some(vis, range(1, 3), steps=2)
    vis.close()
    err = capsys.readouterr().err
    assert err.count("warning: ") == 1 and "python -m visdom.server" in err


def test_page_failure_is_reported_once_not_raised(tmp_path, capsys):
    vis = Visualizer(options(tmp_path))

    def broken() -> None:
        raise OSError("read-only file system")

    vis.page.save = broken
    for epoch in (1, 2):
        vis.display_current_results(visuals(), epoch, epoch, save_result=True)
        vis.log_metrics(epoch, epoch, {"FID": 1.0})
    assert capsys.readouterr().err.count("warning: could not update the training page") == 1


def test_progress_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    progress = Progress(total=100, desc="epoch 1", stream=out)
    for _ in range(50):
        progress.update(2, {"G_GAN": 0.5})
    progress.close()
    lines = out.getvalue().splitlines()
    assert 10 <= len(lines) <= 11
    assert lines[0].startswith("epoch 1: 10/100 img (10%)") and "G_GAN=0.500" in lines[0]
    assert "img/s" in lines[0] and "ETA" in lines[0]
    assert lines[-1].startswith("epoch 1: 100 img in")


def test_progress_resumed_mid_epoch_counts_only_new_images_in_the_rate():
    out = io.StringIO()
    progress = Progress(total=100, desc="epoch 3", stream=out, initial=60)
    progress.update(20, None)
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("epoch 3: 80/100 img (80%)")
    assert lines[-1].startswith("epoch 3: 20 img in")


def test_progress_bar_on_a_terminal_and_disabled():
    out = io.StringIO()
    progress = Progress(total=10, desc="epoch 2", stream=out, tty=True)
    for _ in range(5):
        progress.update(2, {"D_real": 0.25})
    progress.close()
    text = out.getvalue()
    assert "epoch 2" in text and "10/10" in text and "D_real=0.250" in text
    quiet = io.StringIO()
    progress = Progress(total=10, desc="x", enabled=False, stream=quiet)
    progress.update(10, {})
    progress.close()
    assert quiet.getvalue() == ""


def test_summary_block_aligns_keys():
    block = summary_block({"device": "cpu", "dataset A": "12 images", "netG_A": "0.1 M"})
    lines = block.splitlines()
    assert "run summary" in lines[0] and set(lines[-1]) == {"-"}
    assert lines[1] == "device    : cpu" and lines[2] == "dataset A : 12 images"
