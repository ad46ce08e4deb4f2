"""Bad input gives a one-line message and exit code 2, never a traceback; odd images are
converted or skipped and training goes on. Every case runs the real ``train.main`` /
``test.main`` on tiny generated data."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import test as test_script
import train as train_script
from engine import Hook
from models.networks import (
    DISCRIMINATORS,
    GENERATORS,
    define_D,
    define_G,
    discriminator_min_size,
    generator_min_size,
    generator_size_multiple,
)
from tests.helpers import TINY_NETS_32, tiny_args

FAST = TINY_NETS_32



def train_args(model: str, root: Path, ckpt: Path, name: str = "run", *extra: str) -> list:
    return tiny_args(model, root, ckpt, name, *FAST, *extra)


def args_for_test_py(root: Path, ckpt: Path, tmp_path: Path, name: str = "run", *extra: str) -> list:
    return ["--dataroot", str(root), "--name", name, "--model", "pix2pix", "--checkpoints_dir", str(ckpt),
            "--results_dir", str(tmp_path / "results"), "--gpu_ids", "-1", "--num_threads", "0",
            "--netG", "resnet_6blocks", "--crop_size", "32", "--max_dataset_size", "1", *extra]


def one_line_error(capsys) -> str:
    """The single ``error: ...`` line on stderr; fails on a traceback or several errors."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture(scope="module")
def trained(aligned_dataroot, tmp_path_factory) -> Path:
    """The checkpoints folder of one tiny finished pix2pix run named "run"."""
    ckpt = tmp_path_factory.mktemp("trained")
    assert train_script.main(train_args("pix2pix", aligned_dataroot, ckpt)) == 0
    return ckpt


# ----------------------------------------------------------------- layout and options

@pytest.fixture(scope="module")
def layouts(tmp_path_factory, unaligned_dataroot) -> Path:
    root = tmp_path_factory.mktemp("layouts")
    (root / "empty" / "train").mkdir(parents=True)
    (root / "empty" / "train" / "notes.txt").write_text("not an image")
    half = root / "half"
    (half / "trainA").mkdir(parents=True)
    (half / "trainB").mkdir()
    for p in sorted((unaligned_dataroot / "trainA").iterdir())[:2]:
        (half / "trainA" / p.name).write_bytes(p.read_bytes())
    (half / "trainB" / "README.md").write_text("the B images are missing")
    return root


@pytest.mark.parametrize("model, where, extra, needles", [
    ("pix2pix", "missing", [], ["missing/train", "--dataset_mode aligned", "<dataroot>/<phase>/", "A|B"]),
    ("cycle_gan", "missing", [], ["missing", "--dataset_mode unaligned", "<dataroot>/<phase>A/"]),
    ("pix2pix", "aligned", ["--phase", "nophase"], ["nophase", "<dataroot>/<phase>/"]),
    ("cycle_gan", "unaligned", ["--phase", "val"], ["valA", "<dataroot>/<phase>A/ and <dataroot>/<phase>B/"]),
    # each layout given to the other mode: the message says which mode the folder is for
    ("pix2pix", "unaligned", [], ["/train for --dataset_mode aligned", "holds trainA/ and trainB/: unpaired data"]),
    ("cycle_gan", "aligned", [], ["trainA for --dataset_mode unaligned", "holds train/: A|B pairs"]),
    ("pix2pix", "empty", [], ["no images in", "empty/train"]),
    ("cycle_gan", "half", [], ["no images in", "half/trainB"]),
])
def test_missing_or_empty_data_is_a_clear_error(model, where, extra, needles, aligned_dataroot, unaligned_dataroot,
                                                layouts, tmp_path, capsys):
    root = {"aligned": aligned_dataroot, "unaligned": unaligned_dataroot,
            "missing": tmp_path / "missing"}.get(where, layouts / where)
    assert train_script.main(train_args(model, root, tmp_path / "c", "run", *extra)) == 2
    line = one_line_error(capsys)
    for needle in needles:
        assert needle in line, line


@pytest.mark.parametrize("extra, needles", [
    (["--name", "a/b"], ["--name 'a/b'", "plain folder name"]),
    (["--name", "../escape"], ["plain folder name"]),
    (["--name", ".."], ["plain folder name"]),
    (["--name", "."], ["plain folder name"]),
    (["--name", "a\\b"], ["plain folder name"]),
    (["--suffix", "{no_such_option}"], ["--suffix", "no_such_option"]),
    (["--netG", "resnet_7blocks"], ["--netG", "resnet_6blocks", "resnet_9blocks", "unet_128", "unet_256"]),
    (["--netD", "huge"], ["--netD", "basic", "n_layers", "pixel"]),
    (["--norm", "group"], ["--norm", "batch", "instance", "none"]),
    (["--gan_mode", "bce"], ["--gan_mode", "vanilla", "lsgan", "wgangp", "hinge"]),
    (["--lr_policy", "exp"], ["--lr_policy", "linear", "step", "plateau", "cosine"]),
    (["--init_type", "zeros"], ["--init_type", "normal", "xavier"]),
    (["--preprocess", "squash"], ["--preprocess", "resize_and_crop", "scale_width"]),
    (["--model", "pix3pix"], ["unknown model 'pix3pix'", "cycle_gan, pix2pix"]),
    (["--dataset_mode", "pairs"], ["unknown dataset mode 'pairs'", "aligned", "unaligned"]),
    (["--niterr", "5"], ["unrecognized arguments: --niterr"]),
    (["--batch_size", "0"], ["--batch_size must be at least 1"]),
    (["--save_latest_freq", "0"], ["--save_latest_freq must be at least 1"]),
    (["--print_freq", "0"], ["--print_freq must be at least 1"]),
    (["--num_threads", "-1"], ["--num_threads must be at least 0"]),
    (["--ngf", "0"], ["--ngf must be at least 1"]),
    (["--lr", "-0.1"], ["--lr must be positive"]),
    (["--n_epochs", "0", "--n_epochs_decay", "0"], ["nothing to train"]),
    (["--gpu_ids", "x"], ["--gpu_ids 'x'", "-1 for CPU"]),
    # sizes: named valid values, at start, not a norm-layer error from a 1x1 bottleneck
    (["--load_size", "30"], ["load_size 30 is smaller than crop_size 32", "--load_size 36 --crop_size 32"]),
    (["--crop_size", "30"], ["crop_size 30 is not a multiple of 4", "resnet_6blocks", "valid: 28, 32, 36"]),
    (["--crop_size", "4", "--load_size", "4"], ["crop_size 4 is too small", "--netD basic", "at least 24",
                                                "valid: 24, 28, 32"]),
    (["--crop_size", "16", "--load_size", "16", "--netD", "n_layers", "--n_layers_D", "3"],
     ["crop_size 16 is too small", "valid: 24, 28, 32"]),
    (["--netG", "unet_128", "--crop_size", "64", "--load_size", "72"],
     ["crop_size 64 is not a multiple of 128 needed by unet_128", "valid: 128, 256"]),
    (["--preprocess", "crop", "--crop_size", "96"], ["smaller than crop_size 96", ".png is 64x64"]),
])
def test_bad_options_are_one_line_errors(extra, needles, aligned_dataroot, tmp_path, capsys):
    assert train_script.main(train_args("pix2pix", aligned_dataroot, tmp_path / "c", "run", *extra)) == 2
    line = one_line_error(capsys)
    for needle in needles:
        assert needle in line, line
    assert not (tmp_path / "c" / "run" / "latest_checkpoint.pth").exists()


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_min_sizes_in_the_network_tables_are_exact(norm):
    """The sizes the options check accepts train; one step smaller fails inside the network."""
    def runs(net, size: int) -> bool:
        try:
            net.train()(torch.zeros(1, 3, size, size))
            return True
        except (ValueError, RuntimeError):
            return False

    for netG in GENERATORS:
        smallest, multiple = generator_min_size(netG), generator_size_multiple(netG)
        net = define_G(3, 3, 2, netG, norm)
        assert runs(net, smallest) and (smallest == multiple or not runs(net, smallest - multiple)), netG
    for netD in DISCRIMINATORS:
        for n_layers_D in (1, 3):
            smallest = discriminator_min_size(netD, n_layers_D)
            net = define_D(3, 2, netD, n_layers_D, norm)
            assert runs(net, smallest) and not runs(net, smallest - 1), (netD, n_layers_D)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_gpu_without_cuda(aligned_dataroot, tmp_path, capsys):
    assert train_script.main(train_args("pix2pix", aligned_dataroot, tmp_path, "run", "--gpu_ids", "0")) == 2
    assert "CUDA is not available here; use --gpu_ids -1" in one_line_error(capsys)


def test_error_inside_a_loader_worker_is_one_line(aligned_dataroot, tmp_path, capsys):
    """A UserError raised in a DataLoader worker comes back without the worker's traceback."""
    args = train_args("pix2pix", aligned_dataroot, tmp_path, "run", "--input_nc", "4", "--num_threads", "1")
    assert train_script.main(args) == 2
    line = one_line_error(capsys)
    assert line.endswith("has 3 channels but 4 are needed (check --input_nc / --output_nc)")
    assert line.startswith(f"error: {aligned_dataroot / 'train'}")


def test_verbose_shows_the_traceback(aligned_dataroot, tmp_path, capsys):
    assert train_script.main(train_args("pix2pix", aligned_dataroot, tmp_path, "run", "--phase", "x",
                                        "--verbose")) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "UserError" in err
    assert err.strip().splitlines()[-1].startswith("error: no folder")


def test_continue_train_without_any_checkpoint(aligned_dataroot, tmp_path, capsys):
    assert train_script.main(train_args("pix2pix", aligned_dataroot, tmp_path, "never", "--continue_train")) == 2
    line = one_line_error(capsys)
    assert "no weights at" in line and "never" in line and "train first" in line


def test_continue_train_with_another_model(trained, unaligned_dataroot, tmp_path, capsys):
    args = train_args("cycle_gan", unaligned_dataroot, trained, "run", "--continue_train")
    assert train_script.main(args) == 2
    line = one_line_error(capsys)
    assert "written by --model pix2pix, not --model cycle_gan" in line


@pytest.mark.parametrize("extra, needles", [
    (["--epoch", "7"], ["no weights at", "7_net_G.pth", "--epoch", "latest_net_G.pth"]),
    (["--epoch", "best"], ["best_net_G.pth"]),
    (["--load_iter", "5"], ["iter_5_net_G.pth"]),
    (["--name", "nobody"], ["no weights at", "nobody", "files there: none"]),
    (["--aspect_ratio", "0"], ["--aspect_ratio must be positive"]),
    (["--num_test", "-1"], ["--num_test must be at least 1"]),
    (["--results_dir", "FILE/results"], ["cannot write to", "Not a directory", "check --results_dir"]),
])
def test_test_py_errors(extra, needles, trained, aligned_dataroot, tmp_path, capsys):
    (tmp_path / "FILE").write_text("a file where a folder is expected")
    extra = [str(tmp_path / e) if e.startswith("FILE") else e for e in extra]
    assert test_script.main(args_for_test_py(aligned_dataroot, trained, tmp_path, "run", *extra)) == 2
    line = one_line_error(capsys)
    for needle in needles:
        assert needle in line, line


# ----------------------------------------------------------------- odd images

def _save_png16_rgb(path: Path, rgb16: np.ndarray) -> None:
    """A 16-bit RGB PNG written by hand (Pillow writes 8 bits per channel only)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _as_tensor(rgb8: np.ndarray) -> torch.Tensor:
    """What the pipeline must produce for an 8-bit RGB image with --preprocess none, no flip."""
    return torch.from_numpy(rgb8.astype(np.float32).transpose(2, 0, 1) / 255.0) * 2 - 1


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory):
    """A|B files in every format and shape the table lists, plus junk; (root, expected A|B tensors, bad)."""
    root = tmp_path_factory.mktemp("odd")
    train = root / "train"
    train.mkdir()
    rng = np.random.default_rng(0)
    # Full-range values (0 and 255 included) so that any clipping or 8-bit squeeze shows.
    base = rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)
    base[0, 0], base[0, 1] = 0, 255
    expected = {}

    def pair(rgb8: np.ndarray) -> tuple:
        w = rgb8.shape[1] // 2
        return _as_tensor(rgb8[:, :w]), _as_tensor(rgb8[:, w:2 * w])

    Image.fromarray(base).save(train / "rgb.png")
    expected["rgb.png"] = pair(base)
    gray = Image.fromarray(base).convert("L")
    gray.save(train / "gray.png")
    expected["gray.png"] = pair(np.asarray(gray.convert("RGB")))
    Image.fromarray(base).convert("RGBA").save(train / "rgba.png")
    expected["rgba.png"] = pair(base)
    palette = Image.fromarray(base).convert("P", palette=Image.ADAPTIVE)
    palette.save(train / "palette.png")
    expected["palette.png"] = pair(np.asarray(palette.convert("RGB")))
    _save_png16_rgb(train / "deep16.png", base.astype(np.uint16) * 257)
    expected["deep16.png"] = pair(base)
    tifffile.imwrite(train / "deep16.tif", base.astype(np.uint16) * 257, photometric="rgb")
    expected["deep16.tif"] = pair(base)
    odd = np.concatenate([base, base[:, :1]], axis=1)  # width 65: the last column is dropped
    Image.fromarray(odd).save(train / "odd_width.png")
    expected["odd_width.png"] = pair(base)
    tall = rng.integers(0, 256, (40, 64, 3), dtype=np.uint8)  # width not twice the height
    Image.fromarray(tall).save(train / "not_twice_height.png")
    expected["not_twice_height.png"] = pair(tall)
    # Files to ignore and files to skip.
    (train / "notes.txt").write_text("not an image")
    (train / "Thumbs.db").write_bytes(b"\x00" * 64)
    (train / ".DS_Store").write_bytes(b"\x00" * 64)
    (train / "sub").mkdir()
    (train / "sub" / "README").write_text("an empty sub-folder")
    good = (train / "rgb.png").read_bytes()
    (train / "truncated.png").write_bytes(good[: len(good) // 2])
    (train / "garbage.jpg").write_bytes(b"this is no JPEG")
    (train / "empty.png").write_bytes(b"")
    return root, expected, ["empty.png", "garbage.jpg", "truncated.png"]


def test_odd_images_are_converted_and_unreadable_ones_skipped(odd_images, tmp_path, monkeypatch, capsys):
    root, expected, bad = odd_images
    seen = {}

    class Record(Hook):
        def before_step(self, trainer):
            data = trainer.state.batch
            for i, path in enumerate(data["A_paths"]):
                seen.setdefault(Path(path).name, (data["A"][i].clone(), data["B"][i].clone()))

    args = train_args("pix2pix", root, tmp_path, "odd", "--preprocess", "none", "--no_flip", "--n_epochs", "2",
                      "--max_dataset_size", "100", "--serial_batches")
    assert train_script.main(args, hooks=[Record()]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    # Every readable file was used, exactly as the 8-bit RGB it represents (16-bit: no clipping).
    assert sorted(seen) == sorted(expected)
    for name, (A, B) in expected.items():
        torch.testing.assert_close(seen[name][0], A, rtol=0, atol=1e-6, msg=name)
        torch.testing.assert_close(seen[name][1], B, rtol=0, atol=1e-6, msg=name)
    assert float(seen["deep16.png"][0].min()) == -1.0 and float(seen["deep16.png"][0].max()) == 1.0
    # Unreadable files: one warning each naming the file, a summary per epoch, a total at the end.
    for name in bad:
        assert err.count(f"warning: skipping unreadable image {root / 'train' / name}") == 1, err
    for epoch in (1, 2):
        assert f"epoch {epoch}: skipped 3 unreadable image(s): " in err
    assert "End of epoch 2 / 2" in out
    assert "training done: 16 images seen" in out and "6 unreadable image(s) skipped (3 file(s))" in out
    # Non-image files are not even mentioned.
    for name in ("notes.txt", "Thumbs.db", ".DS_Store", "README"):
        assert name not in err + out


def test_every_image_unreadable_stops(tmp_path, capsys):
    (tmp_path / "data" / "train").mkdir(parents=True)
    for name in ("a.png", "b.jpg"):
        (tmp_path / "data" / "train" / name).write_bytes(b"garbage")
    assert train_script.main(train_args("pix2pix", tmp_path / "data", tmp_path / "c")) == 2
    line = one_line_error(capsys)
    assert "every image of epoch 1 was unreadable (2 skipped" in line


@pytest.mark.parametrize("mode, folders", [("aligned", ["train", "val"]),
                                           ("unaligned", ["trainA", "trainB", "valA", "valB", "notes"]),
                                           ("colorization", ["train", "val"])])
def test_missing_test_split_names_the_splits_there(tmp_path, capsys, mode, folders):
    """As maps (train/ and val/ only): test.py's default --phase test points to --phase val."""
    root = tmp_path / "maps"
    for folder in folders:
        (root / folder).mkdir(parents=True)
    extra = ["--input_nc", "1", "--output_nc", "2"] if mode == "colorization" else []
    args = ["--dataroot", str(root), "--name", "r", "--model", "pix2pix", "--dataset_mode", mode,
            "--checkpoints_dir", str(tmp_path / "c"), "--results_dir", str(tmp_path / "r"), "--gpu_ids", "-1", *extra]
    assert test_script.main(args) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"error: no folder {root / 'test'}")
    assert line.endswith(f"; {root} has the splits train, val: choose one with --phase (e.g. --phase val)")
