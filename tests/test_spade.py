"""SPADE: its normalization, TTUR, spectral norm placement, the style encoder and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
from data import create_dataloader, create_dataset
from models import create_model
from models.networks.spade import SPADE
from options import parse_options
from tests.helpers import assert_continue_train_equals_one_run, tiny_args
from util.errors import UserError

SHORT = ["--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "2", "--no_html", "--display_freq",
         "100000", "--print_freq", "100000"]


def first_batch(opt):
    return next(iter(create_dataloader(opt, create_dataset(opt), shuffle=False)))


def spectral(module) -> bool:
    return hasattr(module, "parametrizations") and "weight" in module.parametrizations


def test_spade_modulates_by_the_map():
    torch.manual_seed(0)
    norm = SPADE(4, 2, torch.nn.InstanceNorm2d, hidden=8)
    x = torch.randn(1, 4, 8, 8)
    left = torch.zeros(1, 2, 4, 4)
    left[:, 0] = 1
    right = left.flip(1)
    assert not torch.allclose(norm(x, left), norm(x, right))
    # Without modulation it is the parameter-free norm: gamma = beta = 0 gives norm(x).
    for conv in (norm.mlp_gamma, norm.mlp_beta):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    torch.testing.assert_close(norm(x, left), torch.nn.functional.instance_norm(x))


def test_ttur_betas_and_spectral_norm(label_dataroot, tmp_path):
    opt = parse_options(tiny_args("spade", label_dataroot, tmp_path, "s", "--lr", "0.0004"), is_train=True)
    model = create_model(opt)
    g, d = (o.param_groups[0] for o in model.optimizers)
    assert (g["lr"], d["lr"], g["betas"], d["betas"]) == (0.0002, 0.0008, (0.0, 0.9), (0.0, 0.9))
    block = model.netG.up_0
    assert spectral(block.conv_0) and spectral(block.conv_1) and spectral(block.conv_s)
    assert not spectral(block.norm_0.mlp_shared[0])  # SPADE's own convs are plain
    for scale in model.netD.scales:
        convs = [m for m in scale.modules() if isinstance(m, torch.nn.Conv2d)]
        assert [spectral(c) for c in convs] == [False] + [True] * (len(convs) - 2) + [False]
    # 5 classes + dontcare + the boundary map.
    assert model.netG.head_0.norm_0.mlp_shared[0].in_channels == 7
    # A style image needs a style encoder (a --use_vae run): one clear error, before loading anything.
    test_args = ["--dataroot", str(label_dataroot), "--model", "spade", "--name", "none", "--checkpoints_dir",
                 str(tmp_path), "--gpu_ids", "-1", "--label_nc", "5", "--style_image", "x.png"]
    with pytest.raises(UserError, match="--use_vae"):
        create_model(parse_options(test_args, is_train=False))
    plain = create_model(parse_options(tiny_args("spade", label_dataroot, tmp_path, "p", "--no_TTUR"), True))
    g, d = (o.param_groups[0] for o in plain.optimizers)
    assert (g["lr"], d["lr"], g["betas"]) == (0.0002, 0.0002, (0.5, 0.999))


def test_vae_trains_the_encoder_and_takes_a_style_image(label_dataroot, tmp_path):
    assert train_script.main(tiny_args("spade", label_dataroot, tmp_path, "vae", *SHORT, "--use_vae", "--z_dim",
                                       "8", "--seed", "2", "--max_dataset_size", "1")) == 0
    assert (tmp_path / "vae" / "latest_net_E.pth").is_file()
    style = tmp_path / "style.png"
    Image.new("RGB", (32, 32), (20, 200, 40)).save(style)
    common = ["--dataroot", str(label_dataroot), "--name", "vae", "--model", "spade", "--checkpoints_dir",
              str(tmp_path), "--gpu_ids", "-1", "--num_threads", "0", "--metrics", "none", "--seed", "0"]
    outputs = {}
    for tag, extra in (("pairs", []), ("style", ["--style_image", str(style)])):
        assert test_script.main(common + ["--results_dir", str(tmp_path / tag), *extra]) == 0
        images = sorted((tmp_path / tag / "vae" / "test_latest" / "images").glob("*fake_B*"))
        assert len(images) == 2
        outputs[tag] = [torch.from_numpy(np.asarray(Image.open(p)).copy()) for p in images]
    # The style image's code, not each pair's photo, drives the outputs.
    assert any(not torch.equal(a, b) for a, b in zip(outputs["pairs"], outputs["style"]))


def test_continue_train_equals_one_run(label_dataroot, tmp_path):
    assert_continue_train_equals_one_run("spade", label_dataroot, tmp_path, ["G", "D", "E"], *SHORT[4:],
                                         "--max_dataset_size", "2", "--seed", "5", "--use_vae", "--z_dim", "8")


def test_sizes_follow_spades_generator(label_dataroot, tmp_path):
    """G's first grid is crop_size / 32: other sizes are one clear error naming the model."""
    for size, match in (("48", "multiple of 32 needed by --model spade"), ("32", "at least 64 pixels")):
        opt = parse_options(tiny_args("spade", label_dataroot, tmp_path, "s", "--load_size", size,
                                      "--crop_size", size), is_train=True)
        with pytest.raises(UserError, match=match):
            create_dataset(opt)
