"""Data loading: image reading, transforms, dataset modes, sampler, loader, error messages."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from data import DATASETS, collate_skip_unreadable, create_dataloader, create_dataset
from data.base_dataset import get_params, get_transform, validate_sizes
from data.image_folder import UnreadableImageError, is_image_file, load_image, make_dataset
from data.sampler import ResumableSampler, SampleIndex
from tests.conftest import make_opt
from util.errors import UserError


def save_png16_rgb(path: Path, array: np.ndarray) -> None:
    """Write a 16-bit RGB PNG by hand (Pillow cannot)."""
    h, w, _ = array.shape
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def gradient16(h: int = 32, w: int = 256) -> np.ndarray:
    return np.tile(np.linspace(0, 65535, w).round().astype(np.uint16), (h, 1))


def noise_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- files and decoding

def test_make_dataset_is_recursive_sorted_and_filters(tmp_path):
    for name in ["b.PNG", "a.jpg", "sub/c.JpEg", "sub/deep/d.tiff", "e.webp", "notes.txt", "f.png.bak"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    paths = make_dataset(tmp_path)
    assert [Path(p).relative_to(tmp_path).as_posix() for p in paths] == \
        ["a.jpg", "b.PNG", "e.webp", "sub/c.JpEg", "sub/deep/d.tiff"]
    assert len(make_dataset(tmp_path, max_dataset_size=2)) == 2
    assert is_image_file("X.BMP") and is_image_file("y.pgm") and not is_image_file("z.gif")
    with pytest.raises(UserError, match="not a directory"):
        make_dataset(tmp_path / "missing")


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_load_8bit_modes(tmp_path, mode):
    rgb = Image.fromarray(noise_image(8, 12))
    img = {"RGB": rgb, "L": rgb.convert("L"), "RGBA": rgb.convert("RGBA"),
           "P": rgb.convert("P", palette=Image.ADAPTIVE)}[mode]
    img.save(tmp_path / "x.png")
    three, one = load_image(tmp_path / "x.png", 3), load_image(tmp_path / "x.png", 1)
    assert three.shape == (3, 8, 12) and one.shape == (1, 8, 12)
    assert three.dtype == one.dtype == torch.uint8  # the bytes PIL decodes, as the reference reads them
    assert np.array_equal(three.numpy(), np.asarray(img.convert("RGB")).transpose(2, 0, 1))
    # the reference's convert("RGB") then Grayscale(1), byte for byte
    assert np.array_equal(one[0].numpy(), np.asarray(img.convert("RGB").convert("L")))


def test_load_channel_counts(tmp_path):
    Image.fromarray(noise_image(4, 4)).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(noise_image(4, 4)).convert("L").save(tmp_path / "gray.png")
    Image.fromarray(noise_image(4, 4)).save(tmp_path / "rgb.png")
    assert load_image(tmp_path / "rgba.png", 4).shape[0] == 4
    gray4 = load_image(tmp_path / "gray.png", 4)
    assert gray4.shape[0] == 4 and torch.equal(gray4[0], gray4[3])
    assert load_image(tmp_path / "rgb.png", 2).shape[0] == 2
    with pytest.raises(UserError, match="has 3 channels but 4"):
        load_image(tmp_path / "rgb.png", 4)


def test_16bit_png_keeps_full_range(tmp_path):
    Image.fromarray(gradient16()).save(tmp_path / "gray16.png")
    save_png16_rgb(tmp_path / "rgb16.png", np.stack([gradient16()] * 3, axis=-1))
    for name in ["gray16.png", "rgb16.png"]:
        img = load_image(tmp_path / name, 3)
        assert float(img.min()) == 0.0 and float(img.max()) == pytest.approx(1.0)
        assert (img >= 1.0).float().mean() < 0.01  # no saturation: only the last column is white
        assert np.allclose(img[0, 0].numpy(), np.linspace(0, 1, 256), atol=1e-4)


def test_16bit_and_float_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "g.tif", gradient16())
    tifffile.imwrite(tmp_path / "rgb.tiff", np.stack([gradient16()] * 3, axis=-1), photometric="rgb")
    tifffile.imwrite(tmp_path / "f.tif", np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8))
    for name in ["g.tif", "rgb.tiff"]:
        img = load_image(tmp_path / name, 3)
        assert img.shape == (3, 32, 256) and (img >= 1.0).float().mean() < 0.01
        assert np.allclose(img[1, 5].numpy(), np.linspace(0, 1, 256), atol=1e-4)
    assert float(load_image(tmp_path / "f.tif", 1).max()) == pytest.approx(1.0)


def test_unreadable_files_raise_a_specific_error(tmp_path):
    Image.fromarray(noise_image(64, 64)).save(tmp_path / "good.png")
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.tif").write_bytes(b"not an image at all")
    for name in ["truncated.png", "empty.jpg", "text.tif"]:
        with pytest.raises(UnreadableImageError) as info:
            load_image(tmp_path / name, 3)
        assert info.value.path.endswith(name)


# ---------------------------------------------------------------- transforms and size checks

@pytest.mark.parametrize("preprocess, load, crop, multiple, expected", [
    ("resize_and_crop", 72, 64, 4, (64, 64)),
    ("crop", 0, 32, 4, (32, 32)),
    ("scale_width", 64, 32, 4, (40, 64)),       # 60 * 64/100 = 38.4 -> 38 -> nearest multiple 40
    ("scale_width_and_crop", 64, 32, 4, (32, 32)),
    ("none", 0, 0, 4, (60, 100)),
    ("none", 0, 0, 32, (64, 96)),
    ("none", 0, 0, 128, (128, 128)),            # at least one multiple
])
def test_preprocess_output_sizes(preprocess, load, crop, multiple, expected):
    img = torch.rand(3, 60, 100)
    params = get_params(preprocess, load, crop, (100, 60), no_flip=False, generator=torch.Generator().manual_seed(0))
    out = get_transform(preprocess, load, crop, params, multiple=multiple)(img)
    assert tuple(out.shape[1:]) == expected
    assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0


def test_params_are_seeded_and_flip_respects_no_flip():
    draws = [get_params("resize_and_crop", 286, 256, (600, 600), False, torch.Generator().manual_seed(s))
             for s in (1, 1, 2)]
    assert draws[0] == draws[1]
    assert all(0 <= v <= 30 for d in draws for v in d["crop_pos"])
    assert not any(get_params("crop", 0, 8, (16, 16), True, torch.Generator().manual_seed(s))["flip"]
                   for s in range(20))
    img = torch.rand(1, 4, 8)
    flipped = get_transform("none", 0, 0, {"crop_pos": (0, 0), "flip": True})(img)
    assert torch.allclose(flipped, img.flip(-1) * 2 - 1)


def reference_pipeline(img: Image.Image, preprocess: str, load: int, crop: int, pos, flip: bool,
                       gray: bool) -> torch.Tensor:
    """The reference's get_transform, written out with torchvision on a PIL image: the spec."""
    from torchvision import transforms as T

    def scale_width(im):
        ow, oh = im.size
        if ow == load and oh >= crop:
            return im
        return im.resize((load, int(max(load * oh / ow, crop))), Image.BICUBIC)

    def to_multiple_of_4(im):
        ow, oh = im.size
        w, h = int(round(ow / 4) * 4), int(round(oh / 4) * 4)
        return im if (w, h) == (ow, oh) else im.resize((w, h), Image.BICUBIC)

    steps = [T.Grayscale(1)] if gray else []
    if "resize" in preprocess:
        steps.append(T.Resize([load, load], T.InterpolationMode.BICUBIC))
    elif "scale_width" in preprocess:
        steps.append(T.Lambda(scale_width))
    if "crop" in preprocess:
        steps.append(T.Lambda(lambda im: im.crop((pos[0], pos[1], pos[0] + crop, pos[1] + crop))))
    if preprocess == "none":
        steps.append(T.Lambda(to_multiple_of_4))
    if flip:
        steps.append(T.Lambda(lambda im: im.transpose(Image.FLIP_LEFT_RIGHT)))
    half = (0.5,) * (1 if gray else 3)
    return T.Compose(steps + [T.ToTensor(), T.Normalize(half, half)])(img)


@pytest.mark.parametrize("preprocess, load, crop", [
    ("resize_and_crop", 72, 64), ("crop", 0, 32), ("scale_width", 64, 32),
    ("scale_width_and_crop", 64, 48), ("none", 0, 0)])
@pytest.mark.parametrize("gray", [False, True])
def test_8bit_transform_is_the_references_bit_for_bit(tmp_path, preprocess, load, crop, gray):
    # 62 x 93: scale_width gives 64 x 96 (a multiple of 4, so no rounding beyond the
    # reference's); none rounds 62 to 64 and 93 to 92, in one resize.
    Image.fromarray(noise_image(93, 62, seed=4)).save(tmp_path / "x.jpg", quality=90)
    img = load_image(tmp_path / "x.jpg", 1 if gray else 3)
    for pos, flip in (((3, 5), False), ((0, 7), True)):
        ours = get_transform(preprocess, load, crop, {"crop_pos": pos, "flip": flip})(img)
        with Image.open(tmp_path / "x.jpg") as pil:
            reference = reference_pipeline(pil.convert("RGB"), preprocess, load, crop, pos, flip, gray)
        assert ours.dtype == torch.float32 and torch.equal(ours, reference)


@pytest.mark.parametrize("preprocess, size", [("scale_width", (64, 40)), ("none", (96, 60))])
def test_rounded_sizes_take_one_resize(preprocess, size):
    """scale_width gives 64 x 38 here, rounded to 40; none rounds 98 x 61 to 96 x 60 (Python's
    round, as the reference: 24.5 -> 24): one PIL resize from the original each, never a
    resize of a resized image."""
    array = noise_image(61 if preprocess == "none" else 60, 98 if preprocess == "none" else 100, seed=2)
    img = torch.from_numpy(array.transpose(2, 0, 1).copy())
    out = get_transform(preprocess, 64, 32, {"crop_pos": (0, 0), "flip": False})(img)
    once = np.asarray(Image.fromarray(array).resize(size, Image.BICUBIC)).transpose(2, 0, 1)
    assert torch.equal(out, torch.from_numpy(once.copy()).float() / 255.0 * 2 - 1)


def test_alpha_channels_are_resized_without_premultiplying(tmp_path):
    rgba = np.concatenate([noise_image(30, 30, seed=8), np.zeros((30, 30, 1), np.uint8)], axis=2)
    rgba[:15, :, 3] = 255  # half transparent: PIL's RGBA resize would darken colours there
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = get_transform("resize_and_crop", 20, 20, {"crop_pos": (0, 0), "flip": False})(load_image(tmp_path / "a.png", 4))
    for c in range(4):
        channel = np.asarray(Image.fromarray(rgba[:, :, c]).resize((20, 20), Image.BICUBIC))
        assert torch.equal(out[c], torch.from_numpy(channel.copy()).float() / 255.0 * 2 - 1)


def test_aligned_pair_is_the_references_bit_for_bit(tmp_path):
    """Each half is cut from the 8-bit image, then resized on its own (load = crop: no random crop)."""
    (tmp_path / "train").mkdir()
    Image.fromarray(noise_image(50, 121, seed=6)).save(tmp_path / "train" / "p.jpg")
    item = create_dataset(tiny(tmp_path, dataset_mode="aligned", load_size=32, crop_size=32, no_flip=True))[0]
    with Image.open(tmp_path / "train" / "p.jpg") as pil:
        AB = pil.convert("RGB")
    # an odd width: B is AB.crop((w // 2, 0, w, h)), one column wider than A, as in the reference
    for key, box in (("A", (0, 0, 60, 50)), ("B", (60, 0, 121, 50))):
        expected = reference_pipeline(AB.crop(box), "resize_and_crop", 32, 32, (0, 0), False, False)
        assert torch.equal(item[key], expected)


def test_16bit_images_are_resized_as_floats(tmp_path):
    dark = (gradient16(32, 256) // 64).astype(np.uint16)  # 0 .. 1023: four 8-bit levels
    save_png16_rgb(tmp_path / "rgb16.png", np.stack([dark] * 3, axis=-1))
    img = load_image(tmp_path / "rgb16.png", 3)
    out = get_transform("resize_and_crop", 200, 200, {"crop_pos": (0, 0), "flip": False})(img)
    assert img.dtype == torch.float32 and out.shape == (3, 200, 200)
    assert len(torch.unique(out[0, 0])) > 150  # through 8 bits it would have 5 values at most


@pytest.mark.parametrize("overrides, message", [
    (dict(load_size=200, crop_size=256), "load_size 200 is smaller than crop_size 256"),
    (dict(crop_size=100, size_multiple=128, netG="unet_128"),
     "crop_size 100 is not a multiple of 128 needed by unet_128; valid: 128, 256"),
    (dict(preprocess="scale_width", load_size=30, size_multiple=4), "load_size 30 is not a multiple of 4"),
    (dict(preprocess="zoom"), "unknown --preprocess 'zoom'; available: crop, none, resize_and_crop, scale_width"),
])
def test_validate_sizes_errors(overrides, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        validate_sizes(make_opt(**overrides))
    validate_sizes(make_opt(load_size=286, crop_size=256, size_multiple=256))


# ---------------------------------------------------------------- dataset modes

def tiny(dataroot, **kw) -> dict:
    base = dict(dataroot=str(dataroot), load_size=36, crop_size=32, num_threads=0, seed=0)
    base.update(kw)
    return make_opt(**base)


def test_all_modes_registered():
    assert {"aligned", "unaligned", "single", "template"} <= set(DATASETS.names())
    with pytest.raises(UserError, match="unknown dataset mode 'nope'; available: aligned"):
        create_dataset(make_opt(dataset_mode="nope"))


@pytest.mark.parametrize("preprocess, load, crop", [
    ("resize_and_crop", 56, 48), ("crop", 0, 32), ("scale_width_and_crop", 56, 48)])
def test_aligned_gets_one_crop_and_flip_for_both(tmp_path, preprocess, load, crop):
    half = noise_image(48, 40, seed=3)
    (tmp_path / "train").mkdir()
    Image.fromarray(np.concatenate([half, half], axis=1)).save(tmp_path / "train" / "pair.png")
    ds = create_dataset(tiny(tmp_path, dataset_mode="aligned", preprocess=preprocess, load_size=load, crop_size=crop))
    outputs = [ds[SampleIndex(0, seed=0, epoch=e)] for e in range(8)]
    for item in outputs:
        assert item["A"].shape == (3, crop, crop) and torch.equal(item["A"], item["B"])
    assert len({item["A"].sum().item() for item in outputs}) > 1  # crops and flips do vary


def test_aligned_odd_width_direction_and_channels(tmp_path):
    (tmp_path / "train").mkdir()
    red, blue = np.zeros((32, 33, 3), np.uint8), np.zeros((32, 32, 3), np.uint8)
    red[..., 0], blue[..., 2] = 255, 255
    Image.fromarray(np.concatenate([red[:, :32], blue, red[:, :1]], axis=1)).save(tmp_path / "train" / "p.png")
    kw = dict(dataset_mode="aligned", preprocess="none", no_flip=True)
    item = create_dataset(tiny(tmp_path, **kw))[0]
    assert item["A"].shape == item["B"].shape == (3, 32, 32)
    assert item["A"][0].min() == 1 and item["B"][2].min() == 1
    swapped = create_dataset(tiny(tmp_path, direction="BtoA", input_nc=1, **kw))[0]
    assert swapped["A"].shape[0] == 1 and swapped["B"].shape[0] == 3
    assert swapped["B"][0].max() == 1  # B is now the red (left) half
    blue_gray = int(np.asarray(Image.fromarray(blue).convert("L"))[0, 0])  # PIL's fixed-point luma, 29
    assert torch.equal(swapped["A"], torch.full_like(swapped["A"], blue_gray / 255.0 * 2 - 1))


def test_unaligned_serial_and_random_b(unaligned_dataroot):
    serial = create_dataset(tiny(unaligned_dataroot, dataset_mode="unaligned", serial_batches=True))
    assert [Path(serial[i]["B_paths"]).name for i in range(3)] == ["0001.png", "0002.png", "0003.png"]
    ds = create_dataset(tiny(unaligned_dataroot, dataset_mode="unaligned"))
    picks = [ds[SampleIndex(i, seed=5, epoch=1)]["B_paths"] for i in range(8)]
    assert picks == [ds[SampleIndex(i, seed=5, epoch=1)]["B_paths"] for i in range(8)]
    assert picks != [ds[SampleIndex(i, seed=5, epoch=2)]["B_paths"] for i in range(8)]
    assert "trainB" in picks[0] and len(set(picks)) > 2
    btoa = create_dataset(tiny(unaligned_dataroot, dataset_mode="unaligned", direction="BtoA"))[0]
    assert "trainB" in btoa["A_paths"] and "trainA" in btoa["B_paths"]


def test_single_mode_folders(unaligned_dataroot, aligned_dataroot):
    direct = create_dataset(tiny(unaligned_dataroot / "testA", dataset_mode="single", phase="test"))
    assert len(direct) == 4 and set(direct[0]) == {"A", "A_paths"}
    root = create_dataset(tiny(unaligned_dataroot, dataset_mode="single", phase="test", direction="BtoA"))
    assert "testB" in root[0]["A_paths"] and len(root) == 4
    aligned = create_dataset(tiny(aligned_dataroot, dataset_mode="single", phase="val"))
    assert "val" in aligned[0]["A_paths"]


def test_template_mode_and_its_option(aligned_dataroot):
    import argparse
    parser = DATASETS.get("template").modify_commandline_options(argparse.ArgumentParser(), True)
    assert parser.parse_args([]).template_blur_factor == 4
    item = create_dataset(tiny(aligned_dataroot, dataset_mode="template", output_nc=1))[0]
    assert item["A"].shape == (3, 32, 32) and item["B"].shape == (1, 32, 32)


@pytest.mark.parametrize("mode, layout, expected", [
    ("aligned", "nothing", ["missing/train", "side by side"]),
    ("aligned", "empty_phase", ["no images in", "train"]),
    ("unaligned", "nothing", ["does not exist", "<phase>A"]),
    ("unaligned", "only_A", ["no folder", "trainB", "<dataroot>/<phase>B"]),
    ("unaligned", "empty_B", ["no images in", "trainB"]),
    ("single", "nothing", ["does not exist", "images in <dataroot>"]),
    ("single", "empty_phase", ["no images in"]),
])
def test_layout_errors_name_path_and_layout(tmp_path, mode, layout, expected):
    root = tmp_path / ("missing" if layout == "nothing" else "root")
    if layout == "empty_phase":
        (root / "train").mkdir(parents=True)
    if layout in ("only_A", "empty_B"):
        (root / "trainA").mkdir(parents=True)
        Image.fromarray(noise_image(8, 8)).save(root / "trainA" / "a.png")
    if layout == "empty_B":
        (root / "trainB").mkdir()
    with pytest.raises(UserError) as info:
        create_dataset(tiny(root, dataset_mode=mode))
    assert "\n" not in str(info.value)
    for text in expected:
        assert text in str(info.value)


def test_crop_mode_rejects_small_images_at_start(tmp_path):
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").mkdir()
    Image.fromarray(noise_image(64, 64)).save(tmp_path / "trainA" / "big.png")
    Image.fromarray(noise_image(20, 64)).save(tmp_path / "trainB" / "small.png")
    with pytest.raises(UserError, match=r"small.png is 64x20, smaller than crop_size 32"):
        create_dataset(tiny(tmp_path, dataset_mode="unaligned", preprocess="crop"))


# ---------------------------------------------------------------- loader, skipping, sampler

def test_collate_drops_unreadable_items():
    good = {"A": torch.zeros(3, 2, 2), "A_paths": "a.png"}
    batch = collate_skip_unreadable([good, {"skipped": "bad.png"}, None, good])
    assert batch["A"].shape == (2, 3, 2, 2) and batch["skipped"] == ["bad.png", "<unknown>"]
    assert collate_skip_unreadable([{"skipped": "x.png"}]) == {"skipped": ["x.png"]}


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_images_are_skipped_and_loading_goes_on(tmp_path, capfd, workers):
    (tmp_path / "train").mkdir()
    for i in range(5):
        Image.fromarray(noise_image(32, 64, seed=i)).save(tmp_path / "train" / f"{i}.png")
    data = (tmp_path / "train" / "0.png").read_bytes()
    (tmp_path / "train" / "0.png").write_bytes(data[:200])     # truncated
    (tmp_path / "train" / "3.png").write_bytes(b"garbage")      # not an image
    Image.fromarray(noise_image(32, 1)).save(tmp_path / "train" / "5.png")  # too narrow for A|B
    opt = tiny(tmp_path, dataset_mode="aligned", batch_size=2, num_threads=workers, serial_batches=True)
    loader = create_dataloader(opt, create_dataset(opt))
    batches = list(loader)
    assert sum(b["A"].shape[0] for b in batches if "A" in b) == 3
    skipped = [Path(p).name for b in batches for p in b["skipped"]]
    assert sorted(skipped) == ["0.png", "3.png", "5.png"]
    err = capfd.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning: skipping unreadable image")]
    assert len(warnings) == 3 and "Traceback" not in err
    assert any("5.png: width 1 cannot hold an A|B pair" in line for line in warnings)


def order_of(seed: int, n: int, epoch: int) -> list:
    sampler = ResumableSampler(n, seed=seed)
    sampler.set_epoch(epoch)
    return [int(i) for i in sampler]


def test_sampler_order_start_and_state():
    a, b = ResumableSampler(10, seed=7), ResumableSampler(10, seed=7)
    a.set_epoch(3)
    b.set_epoch(3)
    order = list(a)
    assert order == list(b) and sorted(order) == list(range(10)) and order != list(range(10))
    assert all(i.epoch == 3 and i.seed == 7 for i in order)
    b.set_epoch(4)
    assert list(b) != order
    a.set_start(6)
    assert list(a) == order[6:] and len(a) == 4
    c = ResumableSampler(10, seed=123)
    c.load_state_dict(a.state_dict())
    assert list(c) == order[6:] and c.state_dict() == {"seed": 7, "epoch": 3, "start": 6}
    c.set_epoch(3)
    assert list(c) == order  # set_epoch clears the start offset
    assert list(ResumableSampler(4, shuffle=False)) == [0, 1, 2, 3]
    shards = [list(ResumableSampler(10, seed=7, rank=r, world_size=3)) for r in range(3)]
    # Every rank takes 4: the order is padded with its own first two samples.
    assert [len(s) for s in shards] == [4, 4, 4] and len(ResumableSampler(10, rank=2, world_size=3)) == 4
    assert sorted(sum(shards, [])) == sorted(list(range(10)) + order_of(7, 10, 0)[:2])
    torch.manual_seed(0)
    base = ResumableSampler(5).seed
    torch.manual_seed(0)
    assert ResumableSampler(5).seed == base


def collect(loader, epoch, start=0):
    loader.sampler.set_epoch(epoch)
    loader.sampler.set_start(start)
    return [(b["A_paths"], b["A"], b["B"]) for b in loader]


def test_loader_is_reproducible_across_workers_and_resume(unaligned_dataroot):
    opt = tiny(unaligned_dataroot, dataset_mode="unaligned", batch_size=2, seed=11)
    ds = create_dataset(opt)
    loader = create_dataloader(opt, ds)
    assert loader.batch_size == 2 and not loader.drop_last and isinstance(loader.sampler, ResumableSampler)
    full = collect(loader, epoch=2)
    again = collect(create_dataloader(opt, ds), epoch=2)
    threaded = collect(create_dataloader(tiny(unaligned_dataroot, dataset_mode="unaligned", batch_size=2,
                                              seed=11, num_threads=2), ds), epoch=2)
    resumed = collect(create_dataloader(opt, ds), epoch=2, start=4)
    for other, offset in ((again, 0), (threaded, 0), (resumed, 2)):
        assert len(other) == len(full) - offset
        for (pa, a, b), (qa, c, d) in zip(full[offset:], other):
            assert pa == qa and torch.equal(a, c) and torch.equal(b, d)
    assert [p for p, _, _ in collect(loader, epoch=3)] != [p for p, _, _ in full]


def test_loader_shuffle_defaults(aligned_dataroot):
    ds = create_dataset(tiny(aligned_dataroot, dataset_mode="aligned"))
    in_order = create_dataloader(tiny(aligned_dataroot, serial_batches=True), ds)
    assert [int(i) for i in in_order.sampler] == list(range(len(ds)))
    assert not create_dataloader(tiny(aligned_dataroot, isTrain=False), ds).sampler.shuffle
    assert create_dataloader(tiny(aligned_dataroot), ds).sampler.shuffle
    assert not create_dataloader(tiny(aligned_dataroot), ds, shuffle=False).sampler.shuffle


# ---------------------------------------------------------------- real data (optional)

def test_real_maps_when_available(shared_datasets):
    opt = make_opt(dataroot=str(shared_datasets / "maps"), dataset_mode="aligned", phase="val",
                   max_dataset_size=2, num_threads=0, seed=0)
    item = create_dataset(opt)[0]
    assert item["A"].shape == item["B"].shape == (3, 256, 256)
    assert (item["A"] - item["B"]).abs().mean() > 0.05  # photo and map differ
    opt = make_opt(dataroot=str(shared_datasets / "maps_unaligned"), dataset_mode="unaligned", phase="test",
                   preprocess="crop", crop_size=256, num_threads=0, max_dataset_size=3)
    assert create_dataset(opt)[1]["B"].shape == (3, 256, 256)
