"""Scientific data: multi-channel and 16-bit images, intensity windows, volumes, results in
the data's own type (data/codec.py, data/intensity.py, data/paired_dataset.py,
data/volume_dataset.py, evaluation/results.py, models/pix2pix3d_model.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import test as test_script
import train as train_script
from data import create_dataset
from data.codec import read_array, read_volume, stem_of, write_array, write_volume
from data.intensity import compute_window
from models.networks.volumetric import define_D3d, define_G3d, sliding_window
from options import parse_options
from tests.conftest import load_script
from util.errors import UserError

CPU = ["--gpu_ids", "-1", "--num_threads", "0"]
make_multichannel_set = load_script("make_scientific_demo").make_multichannel_set
make_volume_set = load_script("make_scientific_demo").make_volume_set


# ---------------------------------------------------------------- reading and writing
def test_tiff_pages_and_samples_become_channels(tmp_path):
    stack = np.arange(5 * 6 * 7, dtype=np.uint16).reshape(5, 6, 7) * 100
    tifffile.imwrite(tmp_path / "pages.tif", stack, photometric="minisblack")
    tifffile.imwrite(tmp_path / "rgb.tif", stack[:3].transpose(1, 2, 0), photometric="rgb")
    array, _ = read_array(tmp_path / "pages.tif")
    assert array.dtype == np.uint16 and np.array_equal(array, stack)
    rgb, _ = read_array(tmp_path / "rgb.tif")
    assert np.array_equal(rgb, stack[:3])


def test_npy_axis_rule(tmp_path):
    chw = np.random.default_rng(0).random((4, 20, 30)).astype(np.float32)
    np.save(tmp_path / "chw.npy", chw)
    np.save(tmp_path / "hwc.npy", chw.transpose(1, 2, 0))  # last axis small, first not: channels-last
    np.save(tmp_path / "gray.npy", chw[0])
    assert np.array_equal(read_array(tmp_path / "chw.npy")[0], chw)
    assert np.array_equal(read_array(tmp_path / "hwc.npy")[0], chw)
    assert read_array(tmp_path / "gray.npy")[0].shape == (1, 20, 30)


def test_16bit_png_is_read_unscaled_and_written_back(tmp_path):
    gray = (np.arange(24 * 16).reshape(1, 24, 16) * 170).astype(np.uint16)
    write_array(gray, tmp_path / "g.png")
    array, _ = read_array(tmp_path / "g.png")
    assert array.dtype == np.uint16 and np.array_equal(array, gray)


@pytest.mark.parametrize("suffix", [".nii.gz", ".npy", ".tif"])
@pytest.mark.parametrize("channels", [1, 2])
def test_volumes_round_trip_in_their_format(tmp_path, suffix, channels):
    if suffix == ".nii.gz":
        pytest.importorskip("nibabel")
    volume = (np.random.default_rng(1).random((channels, 9, 10, 11)) * 4000).astype(np.uint16)
    write_volume(volume, tmp_path / f"v{suffix}")
    back = read_volume(tmp_path / f"v{suffix}")
    assert back.dtype == np.uint16 and np.array_equal(back, volume)
    assert stem_of(tmp_path / f"v{suffix}") == "v"


def test_nibabel_sample_file_reads_as_a_volume():
    nibabel = pytest.importorskip("nibabel")
    path = Path(nibabel.__file__).parent / "tests" / "data" / "standard.nii.gz"
    if not path.is_file():
        pytest.skip("nibabel's sample files are not installed")
    volume = read_volume(path)
    assert volume.shape == (1,) + nibabel.load(str(path)).shape[:3]


# ---------------------------------------------------------------- intensity windows
def test_windows_per_mode_and_their_inverse():
    rng = np.random.default_rng(0)
    arrays = [(rng.integers(100, 5000, (2, 8, 8)).astype(np.uint16), None) for _ in range(3)]
    bitdepth = compute_window("bitdepth", arrays)
    assert bitdepth.lo == [0.0, 0.0] and bitdepth.hi == [65535.0, 65535.0] and bitdepth.dtype == "uint16"
    minmax = compute_window("minmax", arrays)
    assert minmax.lo == [float(min(a[c].min() for a, _ in arrays)) for c in range(2)]
    assert minmax.hi == [float(max(a[c].max() for a, _ in arrays)) for c in range(2)]
    percentile = compute_window("percentile", arrays, [10, 90])
    assert all(lo > m for lo, m in zip(percentile.lo, minmax.lo))
    fixed = compute_window("fixed", arrays, [-1000, 1000])
    assert fixed.lo == [-1000.0] * 2
    assert compute_window("bitdepth", [(arrays[0][0], 12)]).hi == [4095.0] * 2  # declared bits
    # Values within the window come back exactly after [0, 1] -> [-1, 1] -> stored units.
    unit = minmax.to_unit(arrays[0][0])
    assert unit.min() >= 0 and unit.max() <= 1
    assert np.array_equal(minmax.from_signed(unit * 2 - 1), arrays[0][0])


# ---------------------------------------------------------------- paired mode
def _paired_opt(root, *extra):
    return parse_options(["--dataroot", str(root), "--model", "pix2pix", "--dataset_mode", "paired",
                          "--netG", "unet_32", "--preprocess", "none", "--crop_size", "32", "--input_nc", "5",
                          "--output_nc", "2", *CPU, *extra], is_train=True)


def test_paired_reads_multichannel_16bit_and_maps_per_channel(tmp_path):
    root = make_multichannel_set(tmp_path, input_nc=5, output_nc=2)
    dataset = create_dataset(_paired_opt(root, "--intensity", "minmax", "--no_flip"))
    item = dataset[0]
    assert item["A"].shape == (5, 32, 32) and item["B"].shape == (2, 32, 32)
    assert item["A"].dtype == torch.float32
    # minmax over the training set: every channel reaches -1 and 1 somewhere in the set.
    channels = torch.stack([dataset[i]["A"] for i in range(len(dataset))]).transpose(0, 1).flatten(1)
    assert torch.allclose(channels.min(1).values, torch.tensor(-1.0)) and torch.allclose(channels.max(1).values,
                                                                                        torch.tensor(1.0))
    windows = dataset.opt.intensity_windows
    assert len(windows) == 2 and len(windows[0]["lo"]) == 5 and windows[0]["dtype"] == "uint16"


def test_paired_errors_name_the_file(tmp_path):
    root = make_multichannel_set(tmp_path, input_nc=5, output_nc=2, n_train=2)
    (root / "trainB" / "tile1.tif").unlink()
    with pytest.raises(UserError, match=r"tile1\.tif has no partner"):
        create_dataset(_paired_opt(root))
    with pytest.raises(UserError, match=r"tile0\.tif has 5 channel\(s\) but --input_nc is 3"):
        create_dataset(_paired_opt(make_multichannel_set(tmp_path / "b", 5, 2, n_train=1), "--input_nc", "3"))


def test_bad_scientific_input_is_one_line_and_exit_2(tmp_path, capsys):
    root = make_multichannel_set(tmp_path, input_nc=5, output_nc=2, n_train=1)
    (root / "trainB" / "tile0.tif").rename(root / "trainB" / "other.tif")
    args = ["--dataroot", str(root), "--model", "pix2pix", "--dataset_mode", "paired", "--input_nc", "5",
            "--output_nc", "2", "--checkpoints_dir", str(tmp_path / "ck"), *CPU]
    assert train_script.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "tile0.tif has no partner" in err and len(err.splitlines()) == 1
    assert train_script.main(args + ["--intensity", "fixed"]) == 2
    assert "--intensity_range" in capsys.readouterr().err


def test_paired_8bit_rgb_stays_on_the_exact_8bit_path(tmp_path):
    rng = np.random.default_rng(0)
    for side in "AB":
        (tmp_path / f"train{side}").mkdir()
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / f"train{side}" / "x.png")
    opt = parse_options(["--dataroot", str(tmp_path), "--model", "pix2pix", "--dataset_mode", "paired",
                         "--netG", "unet_32", "--load_size", "36", "--crop_size", "32", *CPU], is_train=True)
    dataset = create_dataset(opt)
    assert dataset.to_network_range(read_array(tmp_path / "trainA" / "x.png")[0], dataset.windows[0]).dtype \
        == torch.uint8


def test_multichannel_16bit_tiff_trains_and_tests_with_16bit_outputs(tmp_path):
    root = make_multichannel_set(tmp_path / "data", input_nc=5, output_nc=5)
    common = ["--dataroot", str(root), "--name", "mc", "--model", "pix2pix", "--dataset_mode", "paired",
              "--checkpoints_dir", str(tmp_path / "ck"), *CPU]
    assert train_script.main(common + ["--netG", "unet_32", "--netD", "n_layers", "--n_layers_D", "2",
                                       "--preprocess", "none", "--crop_size", "32", "--input_nc", "5",
                                       "--output_nc", "5", "--ngf", "4", "--ndf", "4", "--intensity", "minmax",
                                       "--n_epochs", "1", "--n_epochs_decay", "0", "--no_html",
                                       "--print_freq", "100"]) == 0
    # test.py rebuilds the networks and the intensity mapping from train_opt.json.
    assert test_script.main(common + ["--results_dir", str(tmp_path / "res"), "--metrics", "l1,psnr",
                                      "--display_channels", "3,2,1"]) == 0
    images = tmp_path / "res" / "mc" / "test_latest" / "images"
    fake = tifffile.imread(images / "tile0_fake_B.tif")
    assert fake.dtype == np.uint16 and fake.shape == (5, 32, 32)
    assert Image.open(images / "tile0_fake_B_preview.png").size == (32, 32)
    # The real images go through the window and back: within the training range, exactly.
    real = tifffile.imread(images / "tile0_real_A.tif")
    original = tifffile.imread(root / "testA" / "tile0.tif")
    window = __import__("json").loads((tmp_path / "ck" / "mc" / "train_opt.json").read_text())["intensity_windows"][0]
    inside = (original >= np.array(window["lo"])[:, None, None]) & (original <= np.array(window["hi"])[:, None, None])
    assert inside.mean() > 0.5 and np.array_equal(real[inside], original[inside])
    page = (tmp_path / "res" / "mc" / "test_latest" / "index.html").read_text()
    # The training set's window, not one of the test set: test.py took it from train_opt.json.
    from data.intensity import Window

    assert f"real_A: {Window(**window).describe()}, uint16 tile0_real_A.tif" in page
    metrics = __import__("json").loads((tmp_path / "res" / "mc" / "test_latest" / "metrics.json").read_text())
    assert metrics["ground_truth_pairs"] == 2


# ---------------------------------------------------------------- volumes
def test_3d_networks_and_sliding_window_keep_any_shape():
    torch.manual_seed(0)
    netG = define_G3d(1, 2, 2, "unet_8").eval()
    netD = define_D3d(3, 2, "n_layers", n_layers_D=2)
    patch = torch.randn(1, 1, 16, 16, 16)
    assert netG(patch).shape == (1, 2, 16, 16, 16)
    assert netD(torch.randn(1, 3, 16, 16, 16)).shape == (1, 1, 2, 2, 2)
    with torch.no_grad():
        volume = torch.randn(1, 1, 21, 19, 10)  # one side shorter than the patch
        out = sliding_window(netG, volume, (16, 16, 16), overlap=0.5, out_channels=2)
        assert out.shape == (1, 2, 21, 19, 10)
        # A position-independent net gives the same result with or without windows.
        identity = torch.nn.Identity()
        torch.testing.assert_close(sliding_window(identity, volume, (8, 8, 8), 0.5, 1), volume)
    with pytest.raises(UserError, match="only the U-Nets have a 3-D form"):
        define_G3d(1, 1, 2, "resnet_9blocks")


def test_odd_shaped_volumes_train_on_patches_and_come_back_whole(tmp_path, capsys):
    nibabel = pytest.importorskip("nibabel")
    root = make_volume_set(tmp_path / "data", shape=(40, 48, 36), n_train=2, n_test=1, fmt=".nii.gz")
    common = ["--dataroot", str(root), "--name", "vol", "--model", "pix2pix3d",
              "--checkpoints_dir", str(tmp_path / "ck"), *CPU]
    assert train_script.main(common + ["--netG", "unet_16", "--netD", "n_layers", "--n_layers_D", "2",
                                       "--patch_size", "16", "--input_nc", "1", "--output_nc", "1", "--ngf", "4",
                                       "--ndf", "4", "--intensity", "minmax", "--patches_per_volume", "2",
                                       "--n_epochs", "1", "--n_epochs_decay", "0", "--no_html",
                                       "--print_freq", "100"]) == 0
    out = capsys.readouterr().out  # progress counts what it says: 2 volumes x 2 patches
    assert "epoch 1/1: 4 patches in " in out and "training done: 4 patches seen" in out and " img" not in out
    assert test_script.main(common + ["--results_dir", str(tmp_path / "res")]) == 0
    out = capsys.readouterr().out
    assert "test: 1 volumes in " in out and "processed 1 volumes in " in out and " img" not in out
    images = tmp_path / "res" / "vol" / "test_latest" / "images"
    source = nibabel.load(str(root / "testA" / "vol0.nii.gz"))
    fake = nibabel.load(str(images / "vol0_fake_B.nii.gz"))
    assert fake.shape == (40, 48, 36) and fake.get_data_dtype() == np.uint16
    np.testing.assert_allclose(fake.affine, source.affine)
    real = nibabel.load(str(images / "vol0_real_A.nii.gz"))
    assert np.array_equal(np.asanyarray(real.dataobj), np.asanyarray(source.dataobj))  # minmax of the training set
    preview = Image.open(images / "vol0_fake_B_preview.png")
    assert preview.size == (36 + 36 + 48 + 4, 48)  # H x W, D x W, D x H side by side


def test_patch_size_checks(volume_dataroot, tmp_path):
    args = ["--dataroot", str(volume_dataroot), "--model", "pix2pix3d", "--input_nc", "1", "--output_nc", "1",
            "--checkpoints_dir", str(tmp_path), *CPU]
    from models import create_model

    with pytest.raises(UserError, match="multiples of 16"):
        create_model(parse_options(args + ["--netG", "unet_16", "--patch_size", "24"], is_train=True))
    opt = parse_options(args + ["--netG", "unet_8", "--netD", "n_layers", "--n_layers_D", "2",
                                "--patch_size", "32,16,16"], is_train=True)
    with pytest.raises(UserError, match="smaller than --patch_size"):
        create_dataset(opt)[0]


# ---------------------------------------------------------------- saving results
def test_results_keep_type_format_and_units(tmp_path):
    from data.intensity import Window
    from evaluation.results import ResultSaver
    from util.util import ImageWriter

    window = Window([100.0, 0.0, 0.0], [4100.0, 1.0, 1.0], "uint16", "minmax")
    image = torch.linspace(-1, 1, 4 * 5).reshape(1, 1, 4, 5).repeat(1, 3, 1, 1)
    with ImageWriter() as writer:
        photo = ResultSaver(tmp_path, writer, {})
        assert photo.save("fake_B", image, "p", "x.jpg") == [("fake_B", "images/p_fake_B.png")]
        science = ResultSaver(tmp_path, writer, {"B": window})
        cells = science.save("fake_B", image, "s", "x.npy")
        as_float = ResultSaver(tmp_path, writer, {"B": window}, save_dtype="float32")
        as_float.save("fake_B", image, "f", "x.tif")
    assert np.asarray(Image.open(tmp_path / "p_fake_B.png")).dtype == np.uint8
    saved = np.load(tmp_path / "s_fake_B.npy")  # .npy in, .npy out, in the window's units
    assert saved.dtype == np.uint16 and saved.shape == (3, 4, 5)
    assert saved[0].min() == 100 and saved[0].max() == 4100
    assert cells == [("fake_B: minmax 0..4100 per channel, uint16 s_fake_B.npy", "images/s_fake_B_preview.png")]
    floats = tifffile.imread(tmp_path / "f_fake_B.tif")
    assert floats.dtype == np.float32 and floats.shape == (3, 4, 5) and floats[0].max() == pytest.approx(4100)


def test_result_formats_follow_the_data():
    from data.codec import image_format, volume_format

    assert image_format("x.png", np.uint16, 1) == ".png"  # 16-bit gray PNG in, 16-bit PNG out
    assert image_format("x.png", np.uint16, 3) == ".png"  # 16-bit RGB: a 16-bit PNG, as translate.py writes it
    assert image_format("x.pgm", np.uint16, 1) == ".png"
    assert image_format("x.png", np.uint16, 4) == ".png"  # 16-bit RGBA and gray + alpha fit PNG too
    assert image_format("x.jpg", np.uint16, 2) == ".png"
    assert image_format("x.png", np.uint8, 4) == ".png"
    assert image_format("x.tif", np.uint16, 3) == ".tif"  # TIFF in, TIFF out, at any depth
    assert image_format("x.tiff", np.uint8, 3) == ".tiff"
    assert image_format("x.png", np.uint16, 5) == ".tif"
    assert image_format("x.png", np.int16, 1) == ".tif"
    assert image_format("x.tif", np.uint8, 5) == ".tif"
    assert image_format("x.png", np.float32, 1) == ".tif"
    assert image_format("x.npy", np.uint8, 3) == ".npy"
    assert [volume_format(f"v{s}") for s in (".nii.gz", ".nii", ".npy", ".tiff")] == [".nii.gz", ".nii", ".npy", ".tiff"]


def test_volumes_are_decoded_once_per_epoch_or_once_under_cache_images(volume_dataroot, monkeypatch):
    """Through the training loader (shuffled, 3 patches per pair), each volume file is decoded
    once per epoch, or once in all under --cache_images; the patches are the same either way."""
    import data.volume_dataset as volume_dataset
    from data import create_dataloader, create_dataset
    from options import parse_options

    reads = []
    real = volume_dataset.read_volume
    monkeypatch.setattr(volume_dataset, "read_volume", lambda path: reads.append(path) or real(path))
    samples = {}
    for cache in (False, True):
        opt = parse_options(["--dataroot", str(volume_dataroot), "--model", "pix2pix3d", "--input_nc", "1",
                             "--output_nc", "1", "--patch_size", "16", "--patches_per_volume", "3", "--gpu_ids", "-1",
                             "--num_threads", "0", "--seed", "1", *(["--cache_images"] if cache else [])])
        reads.clear()
        dataset = create_dataset(opt)
        loader = create_dataloader(opt, dataset)
        at_start = len(reads)
        samples[cache] = []
        for epoch in (1, 2):
            loader.sampler.set_epoch(epoch)
            samples[cache] += [(batch["A_paths"], batch["A"], batch["B"]) for batch in loader]
            files = 2 * len(dataset.pairs)  # A and B of each pair
            assert len(reads) - at_start == (0 if cache else files * epoch)  # not 3 times per pair per epoch
    assert len(samples[False]) == 2 * 2 * 3
    assert all(pa == pb and torch.equal(a, b) and torch.equal(c, d)
               for (pa, a, c), (pb, b, d) in zip(samples[False], samples[True]))
