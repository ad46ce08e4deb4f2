"""Every model through the inference doors: translate.py, export.py and pix2cycle.Translator
load the generator that the run's plugin builds, in the plugin's colour space, and give what
test.py gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import export
import test as test_script
import train
import translate
from models.networks.antialias import AntialiasResnetGenerator
from pix2cycle import Translator
from tests.conftest import load_script
from tests.helpers import tiny_args
from tests.inference_helpers import ONE_STEP, random_image
from util.errors import UserError

CUT_RUNS = {"cut": ["--CUT_mode", "CUT"], "fastcut": ["--CUT_mode", "FastCUT"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Checkpoints folder with ``cut`` and ``fastcut`` (32 px, resnet_6blocks, ngf 8), one step each."""
    root = tmp_path_factory.mktemp("doors")
    data = load_script("make_demo_data").make_demo_dataset(root / "unaligned", "unaligned", n_train=1, n_test=1,
                                                           size=32, seed=3)
    checkpoints = root / "checkpoints"
    for name, mode in CUT_RUNS.items():
        assert train.main(tiny_args("cut", data, checkpoints, name, *mode, *ONE_STEP)) == 0
    return checkpoints


def _test_py(checkpoints: Path, tmp_path: Path, name: str, model: str, image: Image.Image, *extra: str) -> Path:
    """test.py on a folder holding ``image`` as img.png; the results' images folder."""
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    image.save(folder / "img.png")
    results = tmp_path / "results"
    assert test_script.main(["--dataroot", str(folder), "--name", name, "--model", model, "--checkpoints_dir",
                             str(checkpoints), "--results_dir", str(results), "--gpu_ids", "-1", "--num_threads",
                             "0", "--metrics", "none", *extra]) == 0
    return next(results.rglob("images"))


def _translate_py(checkpoints: Path, tmp_path: Path, name: str, image: Image.Image) -> np.ndarray:
    source = tmp_path / "src.png"
    image.save(source)
    out = tmp_path / "translated"
    assert translate.main([str(source), "--name", name, "--checkpoints_dir", str(checkpoints), "--gpu_ids", "-1",
                           "--out", str(out)]) == 0
    written = Image.open(out / "src.png")
    assert written.size == image.size
    return np.asarray(written)


@pytest.mark.parametrize("name", sorted(CUT_RUNS))
def test_cut_runs_load_and_translate_through_every_door(runs, tmp_path, name):
    t = Translator.from_checkpoint(runs / name, device="cpu")
    assert isinstance(t.model.unwrap(t.net), AntialiasResnetGenerator)
    image = random_image(32, 32, seed=5)
    expected = np.asarray(Image.open(_test_py(runs, tmp_path, name, "cut", image, "--dataset_mode", "single")
                                     / "img_fake_B.png"))
    translated = t(image)
    assert np.array_equal(np.asarray(translated), expected)  # the same PNG as test.py's, at the training size
    assert np.array_equal(_translate_py(runs, tmp_path, name, image), expected)
    wide = random_image(52, 36, seed=6)
    assert t(wide).size == (52, 36)

    out = tmp_path / f"{name}.pt2"
    assert export.main(["--name", name, "--checkpoints_dir", str(runs), "--format", "exported_program",
                        "--out", str(out)]) == 0
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    torch.testing.assert_close(torch.export.load(out).module()(x), t.forward(x), rtol=0, atol=1e-5)


def test_cut_exports_to_onnx(runs, tmp_path, capsys):
    for module in export.EXPORT_EXTRAS:
        pytest.importorskip(module)
    out = tmp_path / "fastcut.onnx"
    assert export.main(["--name", "fastcut", "--checkpoints_dir", str(runs), "--format", "onnx",
                        "--out", str(out)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "largest difference" in line)
    assert float(line.rsplit(" ", 1)[-1]) <= 1e-4 and out.is_file()


def test_a_one_generator_run_refuses_the_other_direction(runs):
    with pytest.raises(UserError, match="one generator, trained AtoB"):
        Translator.from_checkpoint(runs / "cut", device="cpu", direction="BtoA")


def test_a_volume_model_is_refused_by_name(tmp_path, capsys):
    run = tmp_path / "checkpoints" / "vol"
    run.mkdir(parents=True)
    (run / "train_opt.json").write_text('{"model": "pix2pix3d", "netG": "unet_16", "input_nc": 1, "output_nc": 1}')
    with pytest.raises(UserError, match="pix2pix3d run translates volumes"):
        Translator.from_checkpoint(run, device="cpu")
    random_image(32, 32).save(tmp_path / "x.png")
    assert translate.main([str(tmp_path / "x.png"), "--name", "vol", "--checkpoints_dir", str(tmp_path / "checkpoints"),
                           "--gpu_ids", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "pix2pix3d" in err and len(err.splitlines()) == 1
