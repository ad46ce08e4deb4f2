"""translate.py and tiled translation: folders, globs, names, depths, tiles, errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import translate
from data.image_folder import read_image
from models.networks import define_G
from pix2cycle import Translator, tile_starts, translate_tiled
from pix2cycle.io import encode_png16
from tests.inference_helpers import random_image, train_tiny_runs

# How far an output pixel of resnet_6blocks sees: 7x7 conv 3, two stride-2 convs 1 + 2, twelve 3x3 convs
# at stride 4: 48, two transposed convs 4 + 2, the last 7x7 conv 3 = 63.
RESNET_6_RADIUS = 64


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    return train_tiny_runs(tmp_path_factory.mktemp("runs"))


def _run(checkpoints, *args) -> int:
    return translate.main([*args, "--name", "cyc", "--checkpoints_dir", str(checkpoints), "--gpu_ids", "-1"])


def test_folder_keeps_names_sizes_and_subfolders(checkpoints, tmp_path, capsys):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    random_image(300, 217).save(src / "a.jpg")
    random_image(40, 52, mode="L").save(src / "sub" / "b.png")
    (src / "broken.png").write_bytes(b"not an image")
    (src / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    assert _run(checkpoints, str(src), "--out", str(out)) == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.*")) == ["a.jpg", "sub/b.png"]
    assert Image.open(out / "a.jpg").size == (300, 217)
    assert Image.open(out / "sub" / "b.png").size == (40, 52)
    # The same pixels as the Python API gives for that file.
    api = Translator.from_checkpoint(checkpoints / "cyc", device="cpu")(str(src / "a.jpg"))
    assert np.array_equal(np.asarray(Image.open(out / "a.jpg")), jpeg_at_95(api))  # the API's pixels, as JPEG
    err = capsys.readouterr().err
    assert "warning: skipping" in err and "broken.png" in err


def test_file_types_kept_where_they_hold_the_result(checkpoints, tmp_path):
    """JPEG at quality 95, lossless formats pixel for pixel; a .pgm of an RGB result becomes .png."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    names = ["a.jpg", "b.JPEG", "c.bmp", "d.tif", "e.webp", "f.ppm", "g.pgm", "h.png"]
    for name in names:
        random_image(40, 36, mode="L" if name.endswith("pgm") else "RGB").save(src / name)
    assert _run(checkpoints, str(src), "--out", str(out)) == 0
    made = {p.name: Image.open(p).format for p in out.iterdir()}
    assert made == {"a.jpg": "JPEG", "b.JPEG": "JPEG", "c.bmp": "BMP", "d.tif": "TIFF", "e.webp": "WEBP",
                    "f.ppm": "PPM", "g.png": "PNG", "h.png": "PNG"}
    api = Translator.from_checkpoint(checkpoints / "cyc", device="cpu")
    for name in ("c.bmp", "d.tif", "e.webp", "f.ppm", "h.png"):  # lossless: exactly the API's pixels
        assert np.array_equal(np.asarray(Image.open(out / name)), np.asarray(api(str(src / name)))), name
    for name in ("a.jpg", "b.JPEG"):
        assert np.array_equal(np.asarray(Image.open(out / name)), jpeg_at_95(api(str(src / name)))), name


def jpeg_at_95(image: Image.Image) -> np.ndarray:
    """``image`` as PIL encodes and decodes it at JPEG quality 95."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return np.asarray(Image.open(buffer))


def test_globs_and_repeated_names(checkpoints, tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        random_image(36, 36).save(tmp_path / folder / "same.png")
    out = tmp_path / "out"
    assert _run(checkpoints, str(tmp_path / "*" / "same.png"), str(tmp_path / "x" / "same.png"),
                "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["same.png", "same_2.png"]


def test_sixteen_bit_inputs_give_sixteen_bit_outputs(checkpoints, tmp_path):
    rng = np.random.RandomState(0)
    src = tmp_path / "src"
    src.mkdir()
    rgb16 = (rng.rand(30, 42, 3) * 65535).astype(np.uint16)
    tifffile.imwrite(src / "t.tif", rgb16, photometric="rgb")
    (src / "p.png").write_bytes(encode_png16(rgb16))
    out = tmp_path / "out"
    assert _run(checkpoints, str(src), "--out", str(out)) == 0
    tif = tifffile.imread(out / "t.tif")
    assert tif.dtype == np.uint16 and tif.shape == (30, 42, 3)
    png = read_image(out / "p.png")
    assert png.shape == (3, 30, 42)
    # 16-bit results: values between the 8-bit steps occur.
    assert not torch.equal((png * 255).round() / 255, png)
    assert np.array_equal(tif, np.round(png.permute(1, 2, 0).numpy() * 65535).astype(np.uint16))


def test_encode_png16_round_trip(tmp_path):
    for channels in (1, 3, 4):
        array = (np.random.RandomState(channels).rand(7, 5, channels) * 65535).astype(np.uint16)
        (tmp_path / "x.png").write_bytes(encode_png16(array))
        back = read_image(tmp_path / "x.png")
        assert np.array_equal(np.round(back.permute(1, 2, 0).numpy() * 65535).astype(np.uint16), array)


def test_bad_input_is_one_error_line(checkpoints, tmp_path, capsys):
    assert _run(checkpoints, str(tmp_path / "nothing*.png")) == 2
    assert capsys.readouterr().err.strip().startswith("error: no images match")
    random_image(36, 36).save(tmp_path / "ok.png")
    assert translate.main([str(tmp_path / "ok.png"), "--name", "missing", "--checkpoints_dir",
                           str(checkpoints), "--gpu_ids", "-1"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: no checkpoint folder")
    (tmp_path / "broken.png").write_bytes(b"junk")
    assert _run(checkpoints, str(tmp_path / "broken.png")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot read") and len(err.splitlines()) == 1
    assert _run(checkpoints, str(tmp_path / "ok.png"), "--tile", "32", "--tile_overlap", "40") == 2
    assert "--tile_overlap" in capsys.readouterr().err


def test_tile_starts_cover_and_align():
    for length, tile, overlap, multiple in [(300, 192, 32, 4), (1000, 256, 64, 4), (100, 128, 16, 4), (515, 96, 30, 8)]:
        starts = tile_starts(length, tile, overlap, multiple)
        assert starts[0] == 0 and starts[-1] + tile >= length and all(s % multiple == 0 for s in starts)
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def _exact_mask(length: int, starts: list, tile: int, radius: int) -> np.ndarray:
    """Pixels covered by one tile only and farther than ``radius`` from that tile's cut edges."""
    count, far = np.zeros(length, int), np.zeros(length, bool)
    for s in starts:
        e = min(s + tile, length)
        count[s:e] += 1
        far[s + radius if s > 0 else 0:e - radius if e < length else length] = True
    return far & (count == 1)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_tiles_equal_untiled_away_from_seams(tmp_path, norm):
    torch.manual_seed(0)
    net = define_G(3, 3, 4, "resnet_6blocks", norm, use_dropout=False, init_type="kaiming")
    for m in net.modules():  # running statistics far from the identity, so they matter
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    torch.save(net.state_dict(), tmp_path / "latest_net_G.pth")
    t = Translator.from_checkpoint(tmp_path, device="cpu", netG="resnet_6blocks", ngf=4, norm=norm, eval=True)
    image = torch.from_numpy(np.asarray(random_image(300, 220), np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    whole = t.translate_tensor(image)[0]
    tile, overlap = 192, 32
    tiled = translate_tiled(t.forward, image, tile, overlap, t.size_multiple)[0]
    ys, xs = tile_starts(220, tile, overlap, 4), tile_starts(300, tile, overlap, 4)
    mask = torch.from_numpy(_exact_mask(220, ys, tile, RESNET_6_RADIUS)[:, None]
                            & _exact_mask(300, xs, tile, RESNET_6_RADIUS)[None, :])
    assert mask.sum() > 5000
    assert (whole - tiled).abs()[:, mask].max() < 1e-5
    assert whole.std() > 0.05 and (whole - tiled).abs().max() > 1e-3  # near the seams, tiles see less context


def test_tiled_cli_keeps_size(checkpoints, tmp_path):
    random_image(150, 90).save(tmp_path / "big.png")
    out = tmp_path / "out"
    assert _run(checkpoints, str(tmp_path / "big.png"), "--out", str(out), "--tile", "64", "--tile_overlap", "16") == 0
    assert Image.open(out / "big.png").size == (150, 90)
