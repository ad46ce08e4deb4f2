"""Colorization: Lab data, RGB visuals for the whole batch, and test.py on gray photos."""

import json

import numpy as np
import torch
from PIL import Image

import test as test_script
import train as train_script
from data import create_dataset
from models import create_model
from options import parse_options
from tests.helpers import tiny_args
from util.lab import gray_to_l, lab_to_rgb, rgb_to_lab


def test_lab_scaling_and_round_trip():
    rgb = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    L, ab = rgb_to_lab(rgb)
    assert L.shape == (1, 8, 8) and ab.shape == (2, 8, 8)
    assert L.min() >= -1 and L.max() <= 1 and ab.abs().max() <= 1.2
    # White is L = 100 (1 after scaling) with no colour; black is L = 0 (-1).
    L_w, ab_w = rgb_to_lab(torch.ones(3, 1, 1))
    assert abs(float(L_w) - 1) < 1e-4 and float(ab_w.abs().max()) < 1e-3
    assert abs(float(rgb_to_lab(torch.zeros(3, 1, 1))[0]) + 1) < 1e-6
    back = lab_to_rgb(L[None], ab[None])[0]
    torch.testing.assert_close((back + 1) / 2, rgb, atol=1e-4, rtol=0)
    # A gray value's lightness is the L of the colour with three equal channels.
    gray = torch.full((1, 1, 2, 2), 0.5)
    torch.testing.assert_close(gray_to_l(gray * 2 - 1)[0], rgb_to_lab(torch.full((3, 2, 2), 0.5))[0])


def test_dataset_gives_L_and_ab(unaligned_dataroot, tmp_path):
    opt = parse_options(tiny_args("colorization", unaligned_dataroot, tmp_path, "run", "--no_flip",
                                  "--preprocess", "none"), is_train=True)
    assert (opt.input_nc, opt.output_nc, opt.dataset_mode) == (1, 2, "colorization")
    item = create_dataset(opt)[0]
    assert item["A"].shape == (1, 64, 64) and item["B"].shape == (2, 64, 64)
    photo = np.asarray(Image.open(item["A_paths"]).convert("RGB"), dtype=np.float32) / 255
    rgb = (lab_to_rgb(item["A"][None], item["B"][None])[0] + 1) / 2
    torch.testing.assert_close(rgb, torch.from_numpy(photo).permute(2, 0, 1), atol=1e-4, rtol=0)


def test_every_image_of_the_batch_is_converted(unaligned_dataroot, tmp_path):
    opt = parse_options(tiny_args("colorization", unaligned_dataroot, tmp_path, "run", "--batch_size", "3"),
                        is_train=True)
    model = create_model(opt)
    dataset = create_dataset(opt)
    batch = {k: torch.stack([dataset[i][k] for i in range(3)]) for k in ("A", "B")}
    batch["A_paths"] = batch["B_paths"] = [dataset[i]["A_paths"] for i in range(3)]
    model.set_input(batch)
    model.test()
    assert model.fake_B_rgb.shape == model.real_B_rgb.shape == (3, 3, 32, 32)
    for i in range(3):  # each image, not only the first
        torch.testing.assert_close(model.real_B_rgb[i], lab_to_rgb(batch["A"][i:i + 1], batch["B"][i:i + 1])[0])
        torch.testing.assert_close(model.fake_B_rgb[i], lab_to_rgb(batch["A"][i:i + 1], model.fake_B[i:i + 1])[0])
    assert not torch.equal(model.real_B_rgb[0], model.real_B_rgb[1])


def test_train_then_test_with_and_without_colours(unaligned_dataroot, tmp_path):
    ckpt, results = tmp_path / "c", tmp_path / "r"
    args = tiny_args("colorization", unaligned_dataroot, ckpt, "run", "--n_epochs", "1", "--n_epochs_decay", "0",
                     "--max_dataset_size", "2")
    assert train_script.main(args) == 0
    common = ["--name", "run", "--model", "colorization", "--checkpoints_dir", str(ckpt), "--gpu_ids", "-1",
              "--num_threads", "0", "--crop_size", "32"]
    # Colour test photos: scored in RGB against the real photo.
    assert test_script.main(["--dataroot", str(unaligned_dataroot), "--phase", "testA", "--results_dir",
                             str(results / "colour"), "--metrics", "psnr,ssim", *common]) == 0
    out = results / "colour" / "run" / "testA_latest"
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["psnr"]["n"] == 4 and np.isfinite(metrics["psnr"]["mean"])
    names = {p.name for p in (out / "images").iterdir()}
    assert any("fake_B_rgb" in n for n in names) and any("real_B_rgb" in n for n in names)

    # Gray photos without colours (--dataset_mode single): colourised, nothing to score.
    gray = tmp_path / "gray"
    gray.mkdir()
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 40), dtype=np.uint8)).save(gray / f"{i}.png")
    assert test_script.main(["--dataroot", str(gray), "--dataset_mode", "single", "--results_dir",
                             str(results / "gray"), *common]) == 0
    out = results / "gray" / "run" / "test_latest"
    names = sorted(p.name for p in (out / "images").iterdir())
    assert sum("fake_B_rgb" in n for n in names) == 2 and not any("real_B" in n for n in names)
    assert "fake_B_rgb" in (out / "index.html").read_text()
    colourised = np.asarray(Image.open(next(p for p in (out / "images").iterdir() if "fake_B_rgb" in p.name)))
    assert colourised.ndim == 3 and colourised.shape[2] == 3
