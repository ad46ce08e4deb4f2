"""pix2pixHD: its networks, label input, local enhancer schedule, feature clusters and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import test as test_script
import train as train_script
from data import create_dataloader, create_dataset
from models import create_model
from models.label_maps import instance_boundaries, one_hot
from models.networks.hd import LocalEnhancer, instance_mean
from options import parse_options
from tests.conftest import REPO_ROOT
from tests.helpers import assert_continue_train_equals_one_run, tiny_args, write_random_vgg
from util.errors import UserError

SHORT = ["--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "2", "--no_html", "--display_freq",
         "100000", "--print_freq", "100000"]


def test_instance_mean_averages_each_instance_of_each_image():
    features = torch.arange(2 * 2 * 2 * 3, dtype=torch.float32).view(2, 2, 2, 3)
    inst = torch.tensor([[[[1, 1, 2], [1, 2, 2]]], [[[1, 1, 1], [1, 1, 1]]]], dtype=torch.float32)
    out = instance_mean(features, inst)
    for b in range(2):
        for c in range(2):
            for k in torch.unique(inst[b]):
                mask = inst[b, 0] == k
                torch.testing.assert_close(out[b, c][mask], features[b, c][mask].mean().expand(int(mask.sum())))


def test_one_hot_and_boundaries():
    ids = torch.tensor([[[[0, 2], [1, 1]]]], dtype=torch.float32)
    assert one_hot(ids, 3)[0, :, 0, 1].tolist() == [0, 0, 1]
    with pytest.raises(UserError, match="--label_nc"):
        one_hot(ids, 2)
    inst = torch.tensor([[[[5, 5, 7], [5, 5, 5]]]], dtype=torch.float32)
    assert instance_boundaries(inst)[0, 0].tolist() == [[0, 1, 1], [0, 0, 1]]


def load_scripts_module(name: str):
    """Import ``scripts/<name>.py`` (a folder of scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"scripts_{name}", REPO_ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def first_batch(opt):
    return next(iter(create_dataloader(opt, create_dataset(opt), shuffle=False)))


def test_rgb_to_rgb_without_labels(aligned_dataroot, tmp_path):
    args = tiny_args("pix2pixhd", aligned_dataroot, tmp_path, "rgb", "--label_nc", "0", "--no_instance",
                     "--dataset_mode", "aligned")
    model = create_model(opt := parse_options(args, is_train=True))
    model.setup(opt)
    batch = first_batch(opt)
    model.train_step(batch)
    assert model.fake_B.shape == batch["B"].shape and model.netG.model[1].in_channels == 3
    # Label maps without --dataset_mode label, or instance maps from a mode without them: one clear error.
    for wrong, match in ((["--label_nc", "6", "--no_instance", "--dataset_mode", "aligned"], "--label_nc 0"),
                         (["--label_nc", "0", "--dataset_mode", "aligned"], "--no_instance")):
        with pytest.raises(UserError, match=match):
            create_model(parse_options(tiny_args("pix2pixhd", aligned_dataroot, tmp_path, "x", *wrong), True))


def test_local_enhancer_trains_only_the_outermost_enhancer_first(label_dataroot, tmp_path):
    vgg = write_random_vgg(tmp_path / "vgg19.pth")
    args = tiny_args("pix2pixhd", label_dataroot, tmp_path, "local", "--n_local_enhancers", "1",
                     "--niter_fix_global", "1", "--lambda_vgg", "10", "--vgg_weights", str(vgg))
    opt = parse_options(args, is_train=True)
    model = create_model(opt)
    model.setup(opt)
    assert isinstance(model.netG, LocalEnhancer) and "G_VGG" in model.loss_names
    outer = {id(p) for p in model.netG.outermost_parameters()}
    before = {name: p.detach().clone() for name, p in model.netG.named_parameters()}
    model.train_step(first_batch(opt))
    assert model.get_current_losses()["G_VGG"] > 0
    for name, p in model.netG.named_parameters():
        assert torch.equal(before[name], p) != (id(p) in outer), name
    model.update_learning_rate()  # the epoch ends: the whole of G trains from now on
    model.train_step(first_batch(opt))
    assert not torch.equal(before["model.1.weight"], model.netG.model[1].weight)


def test_instance_features_clusters_and_test(label_dataroot, tmp_path):
    run = tiny_args("pix2pixhd", label_dataroot, tmp_path, "feat", *SHORT, "--instance_feat", "--seed", "1")
    assert train_script.main(run) == 0
    assert (tmp_path / "feat" / "latest_net_E.pth").is_file()
    encode = load_scripts_module("encode_features")
    common = ["--dataroot", str(label_dataroot), "--name", "feat", "--model", "pix2pixhd", "--checkpoints_dir",
              str(tmp_path), "--gpu_ids", "-1", "--num_threads", "0"]
    assert encode.main(common + ["--n_clusters", "2"]) == 0
    centres = np.load(tmp_path / "feat" / "features_clustered.npz")
    assert centres.files and all(c.shape[1] == 3 and len(c) <= 2 for c in (centres[k] for k in centres.files))
    results = tmp_path / "results"
    assert test_script.main(common + ["--results_dir", str(results), "--metrics", "l1,psnr"]) == 0
    assert len(list((results / "feat" / "test_latest" / "images").glob("*fake_B*"))) == 2
    assert (results / "feat" / "test_latest" / "metrics.json").is_file()  # label maps and photos are pairs
    # A run without an encoder: one clear line.
    assert train_script.main(tiny_args("pix2pixhd", label_dataroot, tmp_path, "plain", *SHORT)) == 0
    assert encode.main(common[:2] + ["--name", "plain"] + common[4:]) == 2


def test_continue_train_equals_one_run(label_dataroot, tmp_path):
    assert_continue_train_equals_one_run("pix2pixhd", label_dataroot, tmp_path, ["G", "D", "E"], *SHORT[4:],
                                         "--max_dataset_size", "2", "--seed", "5", "--instance_feat")
