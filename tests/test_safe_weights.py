"""Every weight file train.py writes has a .safetensors twin, and every door loads it: the
same results from a folder of .safetensors alone as from the .pth files; a broken or
mismatched .safetensors is one error line and loads nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import export
import test as test_script
import train
import translate
from models.networks import define_G, load_network_weights
from pix2cycle import Translator
from tests.helpers import tiny_args
from tests.inference_helpers import random_image
from util.errors import UserError
from util.weights import weights_file

NAME = "st_p2p"
RUN = ["--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "2", "--seed", "5", "--no_html",
       "--display_freq", "100", "--ema_decay", "0.9", "--val_freq", "1", "--val_metrics", "psnr"]


@pytest.fixture(scope="module")
def trained(aligned_dataroot, tmp_path_factory) -> Path:
    """A pix2pix run with weight averages and a best epoch: every kind of weight file."""
    checkpoints = tmp_path_factory.mktemp("st_runs")
    assert train.main(tiny_args("pix2pix", aligned_dataroot, checkpoints, NAME, *RUN)) == 0
    return checkpoints / NAME


def _only(run: Path, root: Path, suffix: str) -> Path:
    """A copy of ``run`` in ``root/<name>`` with train_opt.json and the weight files of ``suffix``."""
    folder = root / run.name
    folder.mkdir(parents=True)
    for p in run.iterdir():
        if p.name == "train_opt.json" or ("_net_" in p.name and p.suffix == suffix):
            shutil.copy2(p, folder / p.name)
    return folder


@pytest.fixture(scope="module")
def folders(trained, tmp_path_factory):
    root = tmp_path_factory.mktemp("st_doors")
    return _only(trained, root / "pth", ".pth"), _only(trained, root / "st", ".safetensors")


def test_every_weight_file_has_equal_safetensors(trained):
    weights = sorted(trained.glob("*_net_*.pth"))
    names = {p.name for p in weights}
    assert {"latest_net_G.pth", "latest_net_D.pth", "latest_net_G_ema.pth", "1_net_G.pth",
            "best_net_G.pth", "best_net_G_ema.pth"} <= names, names
    for pth in weights:
        a = torch.load(pth, weights_only=True)
        b = load_file(pth.with_suffix(".safetensors"))
        assert a.keys() == b.keys(), pth.name
        for key in a:
            assert torch.equal(a[key], b[key]), f"{pth.name}: {key}"
    assert not list(trained.glob(".*.tmp"))  # atomic writes leave no temporary files
    assert not list(trained.glob("*_checkpoint.safetensors"))  # the full checkpoint stays a .pth alone


def _images(folder: Path) -> dict:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.rglob("*.png"))}


def test_test_py_same_results(aligned_dataroot, folders, tmp_path):
    for folder in folders:
        assert test_script.main(["--dataroot", str(aligned_dataroot), "--name", NAME, "--model", "pix2pix",
                                 "--checkpoints_dir", str(folder.parent), "--results_dir",
                                 str(tmp_path / folder.parent.name), "--gpu_ids", "-1", "--num_threads", "0",
                                 "--num_test", "2", "--metrics", "none", "--no_dropout", "--use_ema"]) == 0
    pth, st = (_images(tmp_path / f.parent.name) for f in folders)
    assert pth and pth.keys() == st.keys()
    for key in pth:
        assert np.array_equal(pth[key], st[key]), key


def test_translator_and_translate_py_same_output(folders, tmp_path):
    image = random_image(100, 70, seed=1)
    for epoch in ("latest", "best", "1"):
        a, b = (np.asarray(Translator.from_checkpoint(f, epoch=epoch, device="cpu")(image)) for f in folders)
        assert np.array_equal(a, b), epoch
    image.save(tmp_path / "in.png")
    for folder in folders:
        assert translate.main([str(tmp_path / "in.png"), "--name", NAME, "--checkpoints_dir", str(folder.parent),
                               "--out", str(tmp_path / folder.parent.name), "--gpu_ids", "-1"]) == 0
    a, b = (np.asarray(Image.open(tmp_path / f.parent.name / "in.png")) for f in folders)
    assert np.array_equal(a, b)


def test_export_same_program(folders, tmp_path):
    x = torch.rand(1, 3, 256, 384) * 2 - 1  # the size export.py checks (unet_128: multiples of 128, above it)
    outputs = []
    for folder in folders:
        out = tmp_path / f"{folder.parent.name}.pt2"
        assert export.main(["--name", NAME, "--checkpoints_dir", str(folder.parent), "--format",
                            "exported_program", "--out", str(out)]) == 0
        outputs.append(torch.export.load(out).module()(x))
    assert torch.equal(*outputs)


def test_continue_train_from_safetensors(aligned_dataroot, folders):
    for folder in folders:
        args = tiny_args("pix2pix", aligned_dataroot, folder.parent, NAME, *RUN, "--continue_train",
                         "--epoch_count", "2", "--n_epochs", "2")
        assert train.main(args) == 0
    a, b = (torch.load(f / "latest_net_G.pth", weights_only=True) for f in folders)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _one_error_line(err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(w in lines[0] for w in words), lines[0]


def test_broken_or_mismatched_safetensors_is_one_error_line(folders, tmp_path, capsys):
    folder = tmp_path / "bad" / NAME
    shutil.copytree(folders[1], folder)
    image = tmp_path / "in.png"
    random_image(64, 64).save(image)
    args = [str(image), "--name", NAME, "--checkpoints_dir", str(folder.parent), "--out", str(tmp_path / "o")]
    weights = folder / "latest_net_G.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])  # cut short, as by an interrupted download
    capsys.readouterr()
    assert translate.main(args) == 2
    _one_error_line(capsys.readouterr().err, "latest_net_G.safetensors", "damaged")
    weights.write_bytes(b"\x00" * 64)
    assert translate.main(args) == 2
    _one_error_line(capsys.readouterr().err, "latest_net_G.safetensors")
    # Another architecture's weights (a CycleGAN ResNet) under the right name.
    save_file(define_G(3, 3, 8, "resnet_6blocks", "instance").state_dict(), weights)
    assert translate.main(args) == 2
    _one_error_line(capsys.readouterr().err, "do not fit netG")
    with pytest.raises(UserError, match="do not fit netG"):
        Translator.from_checkpoint(folder, device="cpu")


def test_a_pth_replaced_after_the_run_is_the_one_loaded(folders, tmp_path):
    """Weights copied over a run's .pth (the reference's, say) win over the older .safetensors."""
    folder = tmp_path / NAME
    shutil.copytree(folders[0], folder)
    for p in folders[1].iterdir():
        shutil.copy2(p, folder / p.name)
    safe, pth = folder / "latest_net_G.safetensors", folder / "latest_net_G.pth"
    assert weights_file(folder, "latest_net_G") == safe
    state = {k: v + 1 if v.is_floating_point() else v for k, v in torch.load(pth, weights_only=True).items()}
    torch.save(state, pth)
    os.utime(pth, ns=(safe.stat().st_mtime_ns + 10**9,) * 2)
    assert weights_file(folder, "latest_net_G") == pth
    net = Translator.from_checkpoint(folder, device="cpu").net
    assert torch.equal(net.state_dict()[next(iter(state))], state[next(iter(state))])


def test_mismatched_weights_load_nothing():
    net = define_G(3, 3, 8, "unet_128", "batch")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = {k: torch.zeros_like(v) for k, v in before.items()}
    last = list(state)[-1]
    state[last] = torch.zeros(7)  # one tensor of the wrong shape, the others fit
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_network_weights(net, state)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
