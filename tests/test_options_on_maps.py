"""Every training option of docs/ablation.md trains and tests on the real maps data
(``../shared/datasets``): the flag is recorded in train_opt.json, test.py rebuilds the network
from it and writes finite metrics. The networks are tiny (ngf 8, 64 px, 2 pairs, 1 epoch): this
is about the options working end to end on real images, not about their effect."""

from __future__ import annotations

import json
import math

import pytest

import test as test_script
import train as train_script
from tests.conftest import SHARED_DATASETS
from tests.helpers import write_random_vgg

pytestmark = pytest.mark.skipif(not (SHARED_DATASETS / "maps" / "val").is_dir(),
                                reason="real maps data not present (../shared/datasets)")

COMMON = ["--ngf", "8", "--ndf", "8", "--gpu_ids", "-1", "--num_threads", "0", "--display_id", "0"]
TRAIN = ["--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "2", "--no_html", "--print_freq", "1",
         "--seed", "0"]
PIX2PIX_64 = ["--model", "pix2pix", "--netG", "unet_64", "--load_size", "72", "--crop_size", "64"]
PIX2PIX_128 = ["--model", "pix2pix", "--netG", "unet_128", "--load_size", "143", "--crop_size", "128"]
CYCLE_GAN_64 = ["--model", "cycle_gan", "--netG", "resnet_6blocks", "--load_size", "72", "--crop_size", "64"]

# (id, the model's flags, the option's flags, what train_opt.json must record)
CASES = [
    ("normG_normD", PIX2PIX_64, ["--normG", "instance", "--normD", "batch"], {"normG": "instance", "normD": "batch"}),
    ("unet_64", PIX2PIX_64, [], {"netG": "unet_64"}),
    ("patch_1x1", PIX2PIX_64, ["--netD", "pixel"], {"netD": "pixel"}),
    ("patch_16x16", PIX2PIX_64, ["--netD", "n_layers", "--n_layers_D", "1"], {"n_layers_D": 1}),
    ("patch_286x286", PIX2PIX_128, ["--netD", "n_layers", "--n_layers_D", "5"], {"n_layers_D": 5}),
    ("L1_only", PIX2PIX_64, ["--lambda_GAN", "0"], {"lambda_GAN": 0.0}),
    ("cGAN_only", PIX2PIX_64, ["--lambda_L1", "0"], {"lambda_L1": 0.0}),
    ("lr_D_beta2", PIX2PIX_64, ["--lr_D", "0.0004", "--beta2", "0.99"], {"lr_D": 0.0004, "beta2": 0.99}),
    ("warmup", PIX2PIX_64, ["--lr_warmup_iters", "2"], {"lr_warmup_iters": 2}),
    ("grad_accum", PIX2PIX_64, ["--grad_accum_steps", "2"], {"grad_accum_steps": 2}),
    ("clip", PIX2PIX_64, ["--max_grad_norm", "1"], {"max_grad_norm": 1.0}),
    ("ema", PIX2PIX_64, ["--ema_decay", "0.9"], {"ema_decay": 0.9}),
    ("spectral_norm", PIX2PIX_64, ["--spectral_norm_G", "--spectral_norm_D"],
     {"spectral_norm_G": True, "spectral_norm_D": "sngan"}),
    ("upsample_nearest", PIX2PIX_64, ["--upsample", "nearest"], {"upsample": "nearest"}),
    ("upsample_bilinear", PIX2PIX_64, ["--upsample", "bilinear"], {"upsample": "bilinear"}),
    ("attention_up", PIX2PIX_64, ["--attention", "up"], {"attention": "up"}),
    ("attention_down", PIX2PIX_64, ["--attention", "down"], {"attention": "down"}),
    ("attention_both", PIX2PIX_64, ["--attention", "both"], {"attention": "both"}),
    ("multiscale_D", PIX2PIX_64, ["--num_D", "2", "--lambda_feat", "10"], {"num_D": 2, "lambda_feat": 10.0}),
    ("perceptual_style", PIX2PIX_64, ["--lambda_perceptual", "1", "--lambda_style", "10"],
     {"lambda_perceptual": 1.0, "lambda_style": 10.0}),
    ("cycle_gan_resnet", CYCLE_GAN_64,
     ["--upsample", "bilinear", "--spectral_norm_G", "--spectral_norm_D", "--normG", "batch", "--lr_D", "0.0001",
      "--grad_accum_steps", "2", "--max_grad_norm", "5", "--ema_decay", "0.9", "--lr_warmup_iters", "1"],
     {"upsample": "bilinear", "spectral_norm_G": True, "normG": "batch", "grad_accum_steps": 2}),
]


@pytest.fixture(scope="module")
def random_vgg(tmp_path_factory):
    """VGG-19 layers with random weights (no download): enough to train the feature losses."""
    return write_random_vgg(tmp_path_factory.mktemp("vgg") / "vgg19_random.pth", "vgg19")


@pytest.mark.parametrize("case, model, flags, recorded", CASES, ids=[c[0] for c in CASES])
def test_option_trains_and_tests_on_maps(case, model, flags, recorded, tmp_path, random_vgg):
    cyclegan = "cycle_gan" in model
    root = SHARED_DATASETS / ("maps_unaligned" if cyclegan else "maps")
    extra = ["--vgg_weights", str(random_vgg)] if "--lambda_perceptual" in flags else []
    where = ["--dataroot", str(root), "--name", case, "--checkpoints_dir", str(tmp_path)]
    assert train_script.main([*where, *model, *COMMON, *TRAIN, *flags, *extra]) == 0
    saved = json.loads((tmp_path / case / "train_opt.json").read_text())
    assert {k: saved[k] for k in recorded} == recorded
    # test.py takes the architecture from train_opt.json: only the model and the data are given.
    ema = ["--use_ema"] if "--ema_decay" in flags else []
    phase = "test" if cyclegan else "val"
    assert test_script.main([*where, "--model", saved["model"], *COMMON, "--phase", phase, "--num_test", "2",
                             "--results_dir", str(tmp_path / "results"), "--metrics", "l1,psnr", *ema]) == 0
    metrics = json.loads((tmp_path / "results" / case / f"{phase}_latest" / "metrics.json").read_text())["metrics"]
    assert metrics and all(math.isfinite(m["mean"]) for m in metrics.values() if "mean" in m)
    images = list((tmp_path / "results" / case / f"{phase}_latest" / "images").glob("*_fake_B.png"))
    assert len(images) == 2
