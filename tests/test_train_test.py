"""End-to-end: train.main then test.main for every model, on tiny generated data."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
from data.codec import write_preview
from tests.helpers import PAIRED, TINY_BY_MODEL, tiny_args
from util.util import ImageWriter

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.mark.parametrize("model_name", ["pix2pix", "cycle_gan", "template"])
def test_train_then_test(model_name, aligned_dataroot, unaligned_dataroot, tmp_path, capsys):
    root = aligned_dataroot if model_name in PAIRED else unaligned_dataroot
    ckpt, results = tmp_path / "checkpoints", tmp_path / "results"
    args = tiny_args(model_name, root, ckpt, "run", "--n_epochs", "1", "--n_epochs_decay", "1",
                     "--max_dataset_size", "3", "--seed", "1")
    assert train_script.main(args) == 0
    run = ckpt / "run"
    opt_json = json.loads((run / "train_opt.json").read_text())
    assert opt_json["model"] == model_name
    # Always saved at the end, even for short runs; epoch files at the last epoch.
    for tag in ("latest", "2"):
        assert (run / f"{tag}_checkpoint.pth").is_file()
    names = {"pix2pix": ["G", "D"], "cycle_gan": ["G_A", "G_B", "D_A", "D_B"], "template": ["G"]}[model_name]
    for name in names:
        assert (run / f"latest_net_{name}.pth").is_file() and (run / f"2_net_{name}.pth").is_file()
    log = (run / "loss_log.txt").read_text()
    assert re.search(r"\(epoch: 2, iters: \d+, time: [\d.]+, data: [\d.]+\)", log)
    out = capsys.readouterr().out
    assert "End of epoch 2 / 2" in out

    # test.py rebuilds the architecture from train_opt.json: no --netG/--ngf repeated.
    test_args = ["--dataroot", str(root), "--name", "run", "--model", model_name, "--checkpoints_dir", str(ckpt),
                 "--results_dir", str(results), "--gpu_ids", "-1", "--num_threads", "0",
                 "--crop_size", TINY_BY_MODEL[model_name][-1]]
    assert test_script.main(test_args) == 0
    page = results / "run" / "test_latest" / "index.html"
    html = page.read_text()
    n_test = len([p for p in (root / ("test" if model_name in PAIRED else "testA")).iterdir()])
    visuals = {"pix2pix": ["real_A", "fake_B", "real_B"], "template": ["data_A", "output", "data_B"],
               "cycle_gan": ["real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"]}[model_name]
    images = sorted((results / "run" / "test_latest" / "images").iterdir())
    assert len(images) == n_test * len(visuals)  # every test image, every visual
    for label in visuals:
        assert label in html


def test_test_model_does_not_overwrite_cycle_gan_results(unaligned_dataroot, tmp_path):
    ckpt, results = tmp_path / "c", tmp_path / "r"
    assert train_script.main(tiny_args("cycle_gan", unaligned_dataroot, ckpt, "cg", "--n_epochs", "1",
                                       "--n_epochs_decay", "0", "--max_dataset_size", "2")) == 0
    common = ["--name", "cg", "--checkpoints_dir", str(ckpt), "--results_dir", str(results),
              "--gpu_ids", "-1", "--num_threads", "0", "--crop_size", "32"]
    assert test_script.main(["--dataroot", str(unaligned_dataroot), "--model", "cycle_gan", *common]) == 0
    assert test_script.main(["--dataroot", str(unaligned_dataroot / "testA"), "--model", "test",
                             "--model_suffix", "_A", *common]) == 0
    folders = sorted(p.name for p in (results / "cg").iterdir())
    assert folders == ["test_latest", "test_latest_test_A"]
    assert any("fake_B" in p.name for p in (results / "cg" / "test_latest" / "images").iterdir())


def test_continue_train_from_reference_style_weights(aligned_dataroot, tmp_path, capsys):
    """Only <epoch>_net_*.pth files (as a reference run leaves): weights load, training goes on."""
    ckpt = tmp_path / "c"
    args = tiny_args("pix2pix", aligned_dataroot, ckpt, "run", "--n_epochs", "1", "--n_epochs_decay", "0",
                     "--max_dataset_size", "2")
    assert train_script.main(args) == 0
    (ckpt / "run" / "latest_checkpoint.pth").unlink()
    weights = torch.load(ckpt / "run" / "latest_net_G.pth", weights_only=True)
    assert train_script.main(args + ["--continue_train", "--epoch_count", "2", "--n_epochs", "2"]) == 0
    assert "loaded latest_net_*.pth weights" in capsys.readouterr().out
    after = torch.load(ckpt / "run" / "latest_net_G.pth", weights_only=True)
    assert any(not torch.equal(weights[k], after[k]) for k in weights)


@pytest.mark.skipif(not (SHARED / "maps" / "val").is_dir(), reason="real maps data not present (../shared/datasets)")
def test_real_maps_pix2pix_gallery_of_all_val_images(tmp_path):
    ckpt, results = tmp_path / "c", tmp_path / "r"
    common = ["--dataroot", str(SHARED / "maps"), "--name", "m", "--model", "pix2pix", "--checkpoints_dir", str(ckpt),
              "--gpu_ids", "-1", "--num_threads", "0"]
    assert train_script.main(common + ["--netG", "unet_128", "--ngf", "16", "--ndf", "16", "--load_size", "143",
                                       "--crop_size", "128", "--n_epochs", "1", "--n_epochs_decay", "0",
                                       "--max_dataset_size", "4"]) == 0
    assert test_script.main(common + ["--phase", "val", "--results_dir", str(results), "--crop_size", "128"]) == 0
    images = list((results / "m" / "val_latest" / "images").glob("*_fake_B.png"))
    assert len(images) == 100


def test_image_writer_writes_every_file_and_reports_a_failed_write(tmp_path):
    with ImageWriter(max_pending=2) as writer:
        for i in range(12):
            writer.save(write_preview, np.full((4, 6, 3), 10 * i, np.uint8), tmp_path / f"{i}.png")
    assert [int(np.asarray(Image.open(tmp_path / f"{i}.png"))[0, 0, 0]) for i in range(12)] == list(range(0, 120, 10))
    with pytest.raises(OSError):
        with ImageWriter() as writer:
            writer.save(write_preview, np.zeros((4, 4, 3), np.uint8), tmp_path / "no_such_folder" / "x.png")
