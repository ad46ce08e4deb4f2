"""WebDataset shards (``--dataset_mode webdataset``, scripts/make_shards.py): the same items,
the same training and the same resume as the folder they were made from."""

from __future__ import annotations

import json
import signal
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import train as train_script
from data import create_dataset
from data.codec import write_array
from data.sampler import SampleIndex
from options import parse_options
from tests.conftest import load_script
from tests.helpers import TINY_NETS_32, assert_same_networks, tiny_args
from tests.test_resume import SignalDuringStep

SHARDS = load_script("make_shards", folder="scripts")
NETS = {"pix2pix": ["G", "D"], "cycle_gan": ["G_A", "G_B", "D_A", "D_B"]}
FEW_STEPS = [*TINY_NETS_32, "--max_dataset_size", "4", "--seed", "3"]


def sharded(root: Path, out: Path, *phases: str) -> Path:
    SHARDS.make_shards(str(root), str(out), shard_size=3, phases=phases or ("train",))
    return out


@pytest.mark.parametrize("model", ["pix2pix", "cycle_gan"])
def test_training_from_shards_equals_training_from_the_folder(model, aligned_dataroot, unaligned_dataroot, tmp_path):
    root = aligned_dataroot if model == "pix2pix" else unaligned_dataroot
    shards = sharded(root, tmp_path / "shards")
    assert train_script.main(tiny_args(model, root, tmp_path, "folder", *FEW_STEPS)) == 0
    assert train_script.main(tiny_args(model, shards, tmp_path, "shards", *FEW_STEPS,
                                       "--dataset_mode", "webdataset")) == 0
    assert_same_networks(tmp_path / "folder", tmp_path / "shards", NETS[model], atol=0)


def test_resume_on_shards_continues_at_the_sample(aligned_dataroot, tmp_path):
    shards = sharded(aligned_dataroot, tmp_path / "shards")
    extra = [*FEW_STEPS, "--n_epochs_decay", "1", "--dataset_mode", "webdataset", "--save_latest_freq", "3"]
    assert train_script.main(tiny_args("pix2pix", shards, tmp_path, "one", *extra)) == 0
    two = tiny_args("pix2pix", shards, tmp_path, "two", *extra)
    assert train_script.main(two, hooks=[SignalDuringStep(3)]) == 128 + signal.SIGINT  # mid-epoch 1
    state = torch.load(tmp_path / "two" / "latest_checkpoint.pth", weights_only=True)
    assert (state["epoch"], state["epoch_iter"]) == (1, 3)
    assert train_script.main(two + ["--continue_train"]) == 0
    assert_same_networks(tmp_path / "one", tmp_path / "two", NETS["pix2pix"], atol=0)


def items(root: Path, *flags: str) -> list:
    opt = parse_options(["--dataroot", str(root), "--model", "pix2pix", "--netG", "resnet_6blocks", "--load_size", "36", "--crop_size", "32",
                         "--input_nc", "1", "--output_nc", "1", *flags], is_train=True)
    dataset = create_dataset(opt)
    return [dataset[SampleIndex(i, seed=1, epoch=1)] for i in range(len(dataset))]  # the same crops and flips


def assert_same_items(folder_items: list, shard_items: list) -> None:
    assert len(folder_items) == len(shard_items) > 0
    for a, b in zip(folder_items, shard_items):
        assert a.keys() == b.keys()
        for key in (k for k in a if isinstance(a[k], torch.Tensor)):
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=0)


@pytest.fixture
def scientific_root(tmp_path) -> Path:
    """trainA/ of 16-bit PNGs, trainB/ of float .npy and 16-bit TIFFs, paired by name (32x32)."""
    rng = np.random.default_rng(4)
    for k in range(3):
        (tmp_path / "sci" / "trainA").mkdir(parents=True, exist_ok=True)
        (tmp_path / "sci" / "trainB").mkdir(exist_ok=True)
        a = (rng.random((1, 32, 32)) * 65535).astype(np.uint16)
        write_array(a, tmp_path / "sci" / "trainA" / f"t{k}.png")
        b = a.astype(np.float32) / 65535 if k else a[:, ::-1].copy()
        write_array(b, tmp_path / "sci" / "trainB" / f"t{k}.{'npy' if k else 'tif'}")
    return tmp_path / "sci"


@pytest.mark.parametrize("mode", ["paired", "unaligned"])
def test_16_bit_png_tiff_and_npy_in_shards_give_the_folder_items(mode, scientific_root, tmp_path):
    shards = sharded(scientific_root, tmp_path / "shards")
    flags = ["--intensity", "minmax"] if mode == "paired" else []
    if mode == "unaligned":  # the folder mode lists images only: its B side here is the TIFF
        for npy in (scientific_root / "trainB").glob("*.npy"):
            npy.unlink()
        shards = sharded(scientific_root, tmp_path / "shards_images")
    folder = items(scientific_root, "--dataset_mode", mode, *flags)
    assert_same_items(folder, items(shards, "--dataset_mode", "webdataset", "--shards_of", mode, *flags))
    assert folder[0]["A"].unique().numel() > 256  # 16 bits reached the network, not 8


def test_single_shards_give_the_folder_items(unaligned_dataroot, tmp_path):
    shards = sharded(unaligned_dataroot, tmp_path / "shards", "test")
    flags = ["--phase", "test", "--input_nc", "3"]
    folder = items(unaligned_dataroot, "--dataset_mode", "single", *flags)
    from_shards = items(shards, "--dataset_mode", "webdataset", "--shards_of", "single", *flags)
    assert_same_items(folder, from_shards)
    # Results are named after the files: a shard's member keeps the file's name.
    assert [Path(i["A_paths"]).name for i in from_shards] == [Path(i["A_paths"]).name for i in folder]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def broken_shards(kind: str, out: Path) -> Path:
    out.mkdir()
    if kind == "empty":
        tarfile.open(out / "train-000000.tar", "w").close()
    elif kind == "not a tar":
        (out / "train-000000.tar").write_bytes(b"not a tar file at all" * 40)
    elif kind == "no image field":
        text = out / "0001.cls"
        text.write_text("3")
        with tarfile.open(out / "train-000000.tar", "w") as tar:
            tar.add(text, arcname="0001.cls")
    return out


@pytest.mark.parametrize("kind,says", [("missing", "no shards"), ("empty", "holds no samples"),
                                       ("not a tar", "not a readable tar shard"),
                                       ("no image field", "has 0 image fields")])
def test_bad_shards_are_one_error_line(kind, says, tmp_path, capsys):
    root = broken_shards(kind, tmp_path / "bad")
    args = tiny_args("pix2pix", root, tmp_path, "bad", *TINY_NETS_32, "--dataset_mode", "webdataset")
    assert train_script.main(args) == 2
    assert says in one_error_line(capsys)


def test_a_model_whose_data_shards_do_not_hold_is_refused(label_dataroot, tmp_path, capsys):
    args = tiny_args("pix2pixhd", label_dataroot, tmp_path, "hd", "--dataset_mode", "webdataset")
    assert train_script.main(args) == 2
    assert "--model pix2pixhd reads --dataset_mode label" in one_error_line(capsys)


def test_make_shards_keeps_the_order_and_refuses_an_unknown_layout(aligned_dataroot, tmp_path, capsys):
    out = sharded(aligned_dataroot, tmp_path / "out")
    names = [m for shard in sorted(out.glob("train-*.tar")) for m in tarfile.open(shard).getnames()]
    assert names == sorted(p.name for p in (aligned_dataroot / "train").iterdir())
    assert len(list(out.glob("train-*.tar"))) == -(-len(names) // 3)
    (tmp_path / "nothing").mkdir()
    assert SHARDS.main([str(tmp_path / "nothing"), str(tmp_path / "o2")]) == 2
    assert "nothing to shard" in one_error_line(capsys)


# ----------------------------------------------------------------------------- under torchrun
READER = Path(__file__).with_name("shard_ranks.py")


@pytest.mark.extended
def test_torchrun_ranks_and_workers_split_every_epoch_of_the_shards(aligned_dataroot, tmp_path):
    """2 ranks x 2 DataLoader workers, 2 epochs: each epoch is the whole set once, rank by rank
    disjoint, in a new order per epoch; the same seed reads the same again."""
    from tests.test_distributed import torchrun

    shards = sharded(aligned_dataroot, tmp_path / "shards")
    read = []
    for attempt in ("first", "again"):
        done = torchrun(2, str(shards), str(tmp_path / attempt), script=READER)
        assert done.returncode == 0, done.stderr[-3000:]
        read.append([json.loads((tmp_path / attempt / f"rank{r}.json").read_text()) for r in range(2)])
    everything = sorted(p.name for p in (aligned_dataroot / "train").iterdir())
    first = read[0]
    for epoch in range(2):
        ranks = [set(first[r][epoch]) for r in range(2)]
        assert not ranks[0] & ranks[1] and sorted(ranks[0] | ranks[1]) == everything
    assert first[0][0] != first[0][1]  # reseeded: another order, another split
    assert read[1] == first


@pytest.mark.extended
def test_torchrun_training_from_shards_equals_training_from_the_folder(aligned_dataroot, tmp_path):
    from tests.test_distributed import run_args, torchrun

    shards = sharded(aligned_dataroot, tmp_path / "shards")
    flags = ["--model", "pix2pix", *FEW_STEPS, "--n_epochs_decay", "1"]
    for name, root in (("folder", aligned_dataroot), ("shards", shards)):
        mode = ["--dataset_mode", "webdataset"] if name == "shards" else []
        done = torchrun(2, *run_args(root, tmp_path, name, *flags, *mode))
        assert done.returncode == 0, done.stderr[-3000:]
    assert_same_networks(tmp_path / "folder", tmp_path / "shards", NETS["pix2pix"], atol=0)
