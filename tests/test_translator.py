"""pix2cycle.Translator: any size, every input kind, the same results as test.py, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
from models.networks import define_G
from pix2cycle import Translator
from tests.inference_helpers import random_image, train_tiny_runs
from util.errors import UserError


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    return train_tiny_runs(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def cyc(checkpoints) -> Translator:
    return Translator.from_checkpoint(checkpoints / "cyc", device="cpu")


def test_non_square_image_keeps_its_size(cyc):
    out = cyc(random_image(300, 217))
    assert isinstance(out, Image.Image) and out.size == (300, 217) and out.mode == "RGB"


def test_every_input_kind_returns_its_kind(cyc, tmp_path):
    image = random_image(45, 38, seed=1)
    path = tmp_path / "x.png"
    image.save(path)
    from_pil = np.asarray(cyc(image))

    from_path = cyc(str(path))
    assert isinstance(from_path, Image.Image) and np.array_equal(np.asarray(from_path), from_pil)
    assert isinstance(cyc(path), Image.Image)

    u8 = np.asarray(image)
    out = cyc(u8)
    assert out.dtype == np.uint8 and out.shape == (38, 45, 3) and np.array_equal(out, from_pil)

    u16 = u8.astype(np.uint16) * 257  # the same picture at 16 bits
    out16 = cyc(u16)
    assert out16.dtype == np.uint16 and out16.shape == (38, 45, 3)
    assert np.abs(out16 / 65535.0 - from_pil / 255.0).max() <= 1 / 255.0

    f32 = u8.astype(np.float32) / 255.0
    out_f = cyc(f32)
    assert out_f.dtype == np.float32 and out_f.shape == (38, 45, 3) and 0 <= out_f.min() <= out_f.max() <= 1
    assert np.abs(out_f - from_pil / 255.0).max() <= 0.5 / 255.0 + 1e-6

    chw = torch.from_numpy(f32).permute(2, 0, 1) * 2 - 1
    out_t = cyc(chw)
    assert isinstance(out_t, torch.Tensor) and out_t.shape == (3, 38, 45) and out_t.dtype == torch.float32
    assert torch.allclose((out_t.permute(1, 2, 0) + 1) / 2, torch.from_numpy(out_f), atol=1e-6)
    batch = cyc(torch.stack([chw, chw.flip(-1)]))
    assert batch.shape == (2, 3, 38, 45) and torch.equal(batch[0], out_t)

    outs = cyc([image, u8])
    assert isinstance(outs, list) and isinstance(outs[0], Image.Image) and isinstance(outs[1], np.ndarray)

    gray = cyc(np.asarray(image.convert("L")))
    assert gray.shape == (38, 45, 3)  # a gray input is repeated to the generator's 3 channels


def test_same_input_same_output(checkpoints):
    t = Translator.from_checkpoint(checkpoints / "p2p", device="cpu")
    image = random_image(128, 128, seed=2)
    assert np.array_equal(np.asarray(t(image)), np.asarray(t(image)))


def _test_py_output(checkpoints, tmp_path, name, image, extra=()):
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    image.save(folder / "img.png")
    results = tmp_path / "results"
    suffix = ["--model_suffix", "_A"] if name == "cyc" else []
    assert test_script.main(["--dataroot", str(folder), "--name", name, "--model", "test",
                             "--checkpoints_dir", str(checkpoints), "--results_dir", str(results),
                             "--gpu_ids", "-1", "--num_threads", "0", *suffix, *extra]) == 0
    return np.asarray(Image.open(next(results.rglob("img_fake.png"))))


@pytest.mark.parametrize("name,size,eval", [("cyc", 32, False), ("p2p", 128, False), ("p2p", 128, True)])
def test_matches_test_py_at_the_training_size(checkpoints, tmp_path, name, size, eval):
    image = random_image(size, size, seed=3)
    expected = _test_py_output(checkpoints, tmp_path, name, image, ["--eval"] if eval else [])
    t = Translator.from_checkpoint(checkpoints / name, device="cpu", eval=eval)
    assert np.array_equal(np.asarray(t(image)), expected)


def test_eval_mode_uses_running_statistics(checkpoints):
    image = random_image(128, 128, seed=4)
    per_image = Translator.from_checkpoint(checkpoints / "p2p", device="cpu")
    running = Translator.from_checkpoint(checkpoints / "p2p", device="cpu", eval=True)
    before = {k: v.clone() for k, v in per_image.net.state_dict().items()}
    assert not np.array_equal(np.asarray(per_image(image)), np.asarray(running(image)))
    after = per_image.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # no running statistic moved


def test_cyclegan_direction_picks_the_generator(checkpoints, cyc):
    backward = Translator.from_checkpoint(checkpoints / "cyc", device="cpu", direction="BtoA")
    assert (cyc.net_name, backward.net_name) == ("G_A", "G_B")
    image = random_image(32, 32)
    assert not np.array_equal(np.asarray(cyc(image)), np.asarray(backward(image)))


def _bare_weights(tmp_path: Path) -> tuple:
    torch.manual_seed(0)
    net = define_G(3, 3, 4, "resnet_6blocks", "instance", use_dropout=False).eval()
    folder = tmp_path / "bare"
    folder.mkdir()
    torch.save(net.state_dict(), folder / "latest_net_G.pth")
    return net, folder


def test_bare_weights_with_architecture_arguments(tmp_path):
    net, folder = _bare_weights(tmp_path)
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        expected = net(x)
    for source in (folder, folder / "latest_net_G.pth"):
        t = Translator.from_checkpoint(source, device="cpu", netG="resnet_6blocks", ngf=4)
        assert torch.allclose(t(x[0]), expected[0], atol=1e-5)


def test_clear_errors(checkpoints, tmp_path):
    with pytest.raises(UserError, match="no checkpoint folder"):
        Translator.from_checkpoint(tmp_path / "missing", device="cpu")
    _, folder = _bare_weights(tmp_path)
    with pytest.raises(UserError, match="do not fit"):  # ngf 4 weights, default ngf 64 network
        Translator.from_checkpoint(folder, device="cpu", netG="resnet_6blocks")
    with pytest.raises(UserError, match="no weights"):
        Translator.from_checkpoint(checkpoints / "cyc", epoch=7, device="cpu")
    (folder / "latest_net_G.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="refusing to load|damaged"):
        Translator.from_checkpoint(folder, device="cpu", netG="resnet_6blocks", ngf=4)
    with pytest.raises(UserError, match="one generator"):
        Translator.from_checkpoint(checkpoints / "p2p", device="cpu", direction="BtoA")
    with pytest.raises(UserError, match="cannot translate a dict"):
        Translator.from_checkpoint(checkpoints / "cyc", device="cpu")({})
