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
from data.codec import encode_png16, read_array
from models.networks.antialias import AntialiasResnetGenerator
from pix2cycle import Translator
from tests.conftest import load_script
from tests.helpers import tiny_args
from tests.inference_helpers import ONE_STEP, random_image
from util.errors import UserError
from util.lab import lab_to_rgb, rgb_to_l

CUT_RUNS = {"cut": ["--CUT_mode", "CUT"], "fastcut": ["--CUT_mode", "FastCUT"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Checkpoints folder with ``cut``, ``fastcut`` and ``color`` (colorization without dropout;
    32 px, resnet_6blocks, ngf 8), one step each."""
    root = tmp_path_factory.mktemp("doors")
    data = load_script("make_demo_data").make_demo_dataset(root / "unaligned", "unaligned", n_train=1, n_test=1,
                                                           size=32, seed=3)
    checkpoints = root / "checkpoints"
    for name, mode in CUT_RUNS.items():
        assert train.main(tiny_args("cut", data, checkpoints, name, *mode, *ONE_STEP)) == 0
    assert train.main(tiny_args("colorization", data, checkpoints, "color", "--no_dropout", *ONE_STEP)) == 0
    return checkpoints


def _test_py(checkpoints: Path, tmp_path: Path, name: str, model: str, image: Image.Image, *extra: str) -> Path:
    """test.py on a folder holding ``image`` as test/img.png; the results' images folder."""
    folder = tmp_path / "in"
    (folder / "test").mkdir(parents=True, exist_ok=True)
    image.save(folder / "test" / "img.png")
    results = tmp_path / "results" / model / "_".join(extra)
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
    # --model test runs CUT's own generator too (it built the plain ResNet and failed to load).
    as_test = np.asarray(Image.open(_test_py(runs, tmp_path, name, "test", image) / "img_fake.png"))
    assert np.array_equal(as_test, expected)
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


def _signed(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, np.float32) / 127.5 - 1).permute(2, 0, 1)[None]


def test_colorization_takes_a_photo_and_gives_a_colour_photo(runs, tmp_path):
    t = Translator.from_checkpoint(runs / "color", device="cpu")
    photo = random_image(32, 32, seed=7)
    # test.py on the colorization data of that photo: L* as training computes it, lab2rgb of L* and ab.
    expected = np.asarray(Image.open(_test_py(runs, tmp_path, "color", "colorization", photo) / "img_fake_B_rgb.png"))
    result = t(photo)
    assert result.mode == "RGB" and result.size == (32, 32)
    assert np.array_equal(np.asarray(result), expected)
    assert np.array_equal(_translate_py(runs, tmp_path, "color", photo), expected)
    assert np.asarray(result).std(axis=2).max() > 0  # colours, not three equal channels

    gray = photo.convert("L")
    from_gray = t(gray)
    single = _test_py(runs, tmp_path, "color", "colorization", gray, "--dataset_mode", "single")
    assert from_gray.mode == "RGB" and np.array_equal(np.asarray(from_gray),
                                                      np.asarray(Image.open(single / "img_fake_B_rgb.png")))


def test_colorization_exports_its_generator_L_in_ab_out(runs, tmp_path, capsys):
    out = tmp_path / "color.pt2"
    assert export.main(["--name", "color", "--checkpoints_dir", str(runs), "--format", "exported_program",
                        "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "input x: 1 x 1 x H x W" in stdout and "output y: 1 x 2 x H x W" in stdout
    assert "note: " in stdout and "L*/50 - 1" in stdout and "a*b*/110" in stdout
    t = Translator.from_checkpoint(runs / "color", device="cpu")
    rgb = _signed(random_image(44, 36, seed=8))
    L = rgb_to_l(rgb)  # what docs/inference.md says the graph takes
    ab = torch.export.load(out).module()(L)
    assert ab.shape == (1, 2, 36, 44)
    torch.testing.assert_close(lab_to_rgb(L, ab), t.forward(rgb), rtol=0, atol=1e-4)


def test_a_16_bit_rgb_result_is_the_same_file_from_test_py_and_translate_py(runs, tmp_path):
    rgb16 = np.asarray(random_image(32, 32, seed=9), np.uint16) * 257 + np.arange(32, dtype=np.uint16)[:, None, None]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "img.png").write_bytes(encode_png16(rgb16))
    results = tmp_path / "results"
    assert test_script.main(["--dataroot", str(folder), "--name", "cut", "--model", "cut", "--dataset_mode", "single",
                             "--checkpoints_dir", str(runs), "--results_dir", str(results), "--gpu_ids", "-1",
                             "--num_threads", "0", "--metrics", "none", "--save_dtype", "uint16"]) == 0
    from_test, = next(results.rglob("images")).glob("img_fake_B.*")
    out = tmp_path / "translated"
    assert translate.main([str(folder / "img.png"), "--name", "cut", "--checkpoints_dir", str(runs),
                           "--gpu_ids", "-1", "--out", str(out)]) == 0
    from_translate, = out.iterdir()
    assert from_test.suffix == from_translate.suffix == ".png"
    a, b = read_array(from_test)[0], read_array(from_translate)[0]
    assert a.dtype == b.dtype == np.uint16 and a.shape == b.shape == (3, 32, 32)
    assert np.array_equal(a, b)  # the same values, rounded the same way
    assert len(np.unique(a % 257)) > 1  # values between the 8-bit steps: written at 16 bits


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


# kind -> (channels, dtype, source file name, test.py's extra flags)
SAME_FILE_KINDS = {"rgb8": (3, np.uint8, "img.png", []), "rgb16": (3, np.uint16, "img.png", ["--save_dtype", "uint16"]),
                   "gray16": (1, np.uint16, "img.png", ["--save_dtype", "uint16"]),
                   "bands16": (5, np.uint16, "img.tif", ["--save_dtype", "uint16"])}


@pytest.mark.parametrize("kind", sorted(SAME_FILE_KINDS))
def test_test_py_and_translate_py_write_the_same_file(kind, tmp_path):
    """One output policy (data.codec.image_format) from both doors: the same file type, dtype,
    channels and values for 8-bit RGB, 16-bit RGB, 16-bit gray and 5-band 16-bit data."""
    import tifffile

    from data.codec import write_array
    from models.networks import define_G

    channels, dtype, source, extra = SAME_FILE_KINDS[kind]
    torch.manual_seed(0)
    net = define_G(channels, channels, 4, "resnet_6blocks", "instance", use_dropout=False, init_type="normal")
    (tmp_path / "bare").mkdir()
    torch.save(net.state_dict(), tmp_path / "bare" / "latest_net_G.pth")
    folder = tmp_path / "in"
    folder.mkdir()
    top = np.iinfo(dtype).max
    array = np.random.default_rng(1).integers(0, top, (channels, 32, 32), endpoint=True).astype(dtype)
    write_array(array, folder / source)
    architecture = ["--netG", "resnet_6blocks", "--ngf", "4", "--norm", "instance", "--no_dropout",
                    "--input_nc", str(channels), "--output_nc", str(channels), "--gpu_ids", "-1"]
    results = tmp_path / "results"
    assert test_script.main(["--dataroot", str(folder), "--name", "bare", "--model", "test", "--dataset_mode", "single",
                             "--checkpoints_dir", str(tmp_path), "--results_dir", str(results), "--num_threads", "0",
                             "--metrics", "none", "--preprocess", "none", *architecture, *extra]) == 0
    from_test = [p for p in next(results.rglob("images")).glob("img_fake*") if "preview" not in p.name]
    out = tmp_path / "translated"
    assert translate.main([str(folder / source), "--name", "bare", "--checkpoints_dir", str(tmp_path), "--out", str(out),
                           *architecture]) == 0
    from_translate, = out.iterdir()
    assert [p.suffix for p in from_test] == [from_translate.suffix] == [Path(source).suffix]
    a, b = read_array(from_test[0])[0], read_array(from_translate)[0]
    assert a.dtype == b.dtype == dtype and a.shape == b.shape == (channels, 32, 32)
    assert np.array_equal(a, b)  # the same values, rounded the same way
    if dtype == np.uint16:
        assert len(np.unique(a % 257)) > 1  # values between the 8-bit steps: written at 16 bits
    if kind == "bands16":
        assert tifffile.imread(from_translate).shape == (5, 32, 32)
