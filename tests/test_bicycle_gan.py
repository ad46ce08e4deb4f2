"""BicycleGAN (--model bicycle_gan): exact resume, K samples per input in test.py's gallery,
the Translator's seed and style image, and the one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
from pix2cycle import Translator
from tests.helpers import assert_same_networks, tiny_args
from util.errors import UserError

SHORT = ["--max_dataset_size", "4", "--seed", "3", "--no_html", "--print_freq", "100000", "--display_freq", "100000"]
NETS = ["G", "E", "D", "D2"]


@pytest.fixture(scope="module")
def run(aligned_dataroot, tmp_path_factory):
    """A tiny two-epoch run in one go (checkpoints, name "one")."""
    checkpoints = tmp_path_factory.mktemp("bicycle")
    assert train_script.main(tiny_args("bicycle_gan", aligned_dataroot, checkpoints, "one", *SHORT,
                                       "--n_epochs", "2", "--n_epochs_decay", "0")) == 0
    return checkpoints


def test_resume_gives_the_weights_of_one_run(run, aligned_dataroot):
    args = tiny_args("bicycle_gan", aligned_dataroot, run, "split", *SHORT, "--n_epochs_decay", "0")
    assert train_script.main(args + ["--n_epochs", "1"]) == 0
    assert train_script.main(args + ["--n_epochs", "2", "--continue_train"]) == 0
    assert_same_networks(run / "one", run / "split", NETS, atol=0)


def test_test_py_writes_k_samples_side_by_side(run, aligned_dataroot, tmp_path):
    assert test_script.main(["--dataroot", str(aligned_dataroot), "--model", "bicycle_gan", "--name", "one",
                             "--checkpoints_dir", str(run), "--results_dir", str(tmp_path), "--gpu_ids", "-1",
                             "--num_threads", "0", "--n_samples", "3", "--num_test", "2", "--metrics", "l1"]) == 0
    folder = tmp_path / "one" / "test_latest"
    samples = sorted((folder / "images").glob("*_fake_B_sample_*.png"))
    assert len(samples) == 2 * 3
    first = [np.asarray(Image.open(p), dtype=float) for p in samples[:3]]
    assert all(np.abs(a - b).mean() > 0 for a, b in zip(first, first[1:])), "the samples are all the same"
    # One gallery row per input, its samples in columns beside the input and the target.
    html = (folder / "index.html").read_text()
    row = html[html.index(samples[0].name.split("_fake")[0]):]
    assert all(f"fake_B_sample_{k}" in row[:row.index("</tr>")] for k in (1, 2, 3))


def test_translator_takes_a_seed_or_a_style_image(run, aligned_dataroot):
    translator = Translator.from_checkpoint(run / "one", device="cpu")
    pair = Image.open(sorted((aligned_dataroot / "test").iterdir())[0])
    photo, target = pair.crop((0, 0, 64, 64)), pair.crop((64, 0, 128, 64))

    def out(**choice):
        return np.asarray(translator.condition(**choice)(photo), dtype=float)

    assert np.array_equal(out(seed=1), out(seed=1))
    assert not np.array_equal(out(seed=1), out(seed=2))
    assert not np.array_equal(out(style=target), out())
    with pytest.raises(UserError, match="not both"):
        translator.condition(seed=1, style=target)


def test_odd_batch_and_n_samples_elsewhere_are_one_line_errors(aligned_dataroot, tmp_path, capsys):
    assert train_script.main(tiny_args("bicycle_gan", aligned_dataroot, tmp_path, "odd", "--batch_size", "3")) == 2
    assert capsys.readouterr().err.strip() == ("error: --model bicycle_gan splits each batch into a cVAE-GAN and a "
                                               "cLR-GAN half: --batch_size must be even, not 3")
    assert not (tmp_path / "odd" / "latest_net_G.pth").exists()
    assert test_script.main(["--dataroot", str(aligned_dataroot), "--model", "pix2pix", "--name", "x",
                             "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1", "--n_samples", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --n_samples 2 is not used with --model pix2pix") and "\n" not in err


def test_z_l1_updates_g_only(aligned_dataroot, tmp_path):
    """The z-L1 term reaches G's weights and none of E's (the authors hold E fixed for it)."""
    from data import create_dataset, first_batch
    from models import create_model
    from options import parse_options

    opt = parse_options(tiny_args("bicycle_gan", aligned_dataroot, tmp_path, "z"), is_train=True)
    model = create_model(opt)
    model.set_input(first_batch(create_dataset(opt), 2))
    model.forward_train()
    model.backward_G()
    model.loss_z_L1.backward()
    assert all(p.grad is None or not p.grad.any() for p in model.netE.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.netG.parameters())
    torch.testing.assert_close(model.loss_kl, model.opt.lambda_kl * -0.5 * torch.sum(
        1 + model.logvar - model.mu.pow(2) - model.logvar.exp()))
