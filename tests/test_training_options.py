"""The training options of the literature: separate norms, loss weights, two-timescale rates,
warm-up, gradient accumulation, clipping, weight averages and spectral normalization."""

from __future__ import annotations

import json
import shutil
import signal

import pytest
import torch
from torch import nn

import test as test_script
import train as train_script
from models import create_model
from models.training_step import clip_gradients, warmup_factor
from options import parse_options
from tests.helpers import assert_same_networks, tiny_args, write_random_vgg
from tests.test_resume import SignalDuringStep


def pix2pix(aligned_dataroot, tmp_path, *extra):
    opt = parse_options(tiny_args("pix2pix", aligned_dataroot, tmp_path, "run", *extra), is_train=True)
    return create_model(opt), opt


def batch_of(aligned_dataroot, n: int, start: int = 0) -> dict:
    """``n`` fixed 128x128 pairs (no crop, no flip), as the aligned loader gives them."""
    torch.manual_seed(3 + start)
    a = torch.rand(n, 3, 128, 128) * 2 - 1
    return {"A": a, "B": torch.flip(a, dims=[3]).roll(5, 2), "A_paths": [f"{i}.png" for i in range(n)]}


def norm_types(net: nn.Module) -> set:
    return {type(m).__name__ for m in net.modules() if "Norm" in type(m).__name__}


def test_separate_norms_are_built_saved_and_rebuilt_by_test(aligned_dataroot, tmp_path):
    model, opt = pix2pix(aligned_dataroot, tmp_path, "--normG", "instance", "--normD", "batch")
    assert norm_types(model.netG) & {"InstanceNorm2d", "BatchStatsInstanceNorm2d"}
    assert "BatchNorm2d" not in norm_types(model.netG)
    assert "BatchNorm2d" in norm_types(model.netD)
    # Default: both follow --norm (pix2pix's batch norm), as before.
    _, plain = pix2pix(aligned_dataroot, tmp_path)
    assert (plain.normG, plain.normD) == ("batch", "batch")
    # test.py takes the saved generator norm from train_opt.json.
    assert train_script.main(tiny_args("pix2pix", aligned_dataroot, tmp_path, "run", "--normG", "instance",
                                       "--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "1",
                                       "--no_html")) == 0
    saved = json.loads((tmp_path / "run" / "train_opt.json").read_text())
    assert (saved["normG"], saved["normD"]) == ("instance", "batch")
    test_opt = parse_options(["--dataroot", str(aligned_dataroot), "--name", "run", "--model", "pix2pix",
                              "--checkpoints_dir", str(tmp_path), "--gpu_ids", "-1"], is_train=False)
    assert test_opt.normG == "instance"


def test_lambda_gan_zero_builds_no_discriminator(aligned_dataroot, tmp_path):
    model, _ = pix2pix(aligned_dataroot, tmp_path, "--lambda_GAN", "0")
    assert model.model_names == ["G"] and not hasattr(model, "netD") and len(model.optimizers) == 1
    before = [p.detach().clone() for p in model.netG.parameters()]
    model.train_step(batch_of(aligned_dataroot, 1))
    assert list(model.get_current_losses()) == ["G_L1"]
    assert any(not torch.equal(b, p) for b, p in zip(before, model.netG.parameters()))


def test_lambda_l1_zero_trains_the_cgan_only(aligned_dataroot, tmp_path):
    model, _ = pix2pix(aligned_dataroot, tmp_path, "--lambda_L1", "0")
    model.train_step(batch_of(aligned_dataroot, 1))
    losses = model.get_current_losses()
    assert losses["G_L1"] == 0 and losses["G_GAN"] > 0


def test_two_timescale_rates_and_beta2_follow_the_schedule(aligned_dataroot, tmp_path):
    model, _ = pix2pix(aligned_dataroot, tmp_path, "--lr", "0.001", "--lr_D", "0.004", "--beta2", "0.99",
                       "--n_epochs", "1", "--n_epochs_decay", "3")
    model.setup(model.opt)
    assert model.optimizer_G.param_groups[0]["betas"] == (0.5, 0.99)
    assert [o.param_groups[0]["lr"] for o in model.optimizers] == [0.001, 0.004]
    model.follow_schedule(3)  # a resumed run at epoch 3 of 1 + 3: linear decay 1 - 2/4
    lr_G, lr_D = (o.param_groups[0]["lr"] for o in model.optimizers)
    assert lr_G == pytest.approx(0.0005) and lr_D == pytest.approx(0.002)


def test_warmup_scales_the_first_updates_and_leaves_the_schedule_alone(aligned_dataroot, tmp_path):
    assert [warmup_factor(i, 4) for i in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0
    model, _ = pix2pix(aligned_dataroot, tmp_path, "--lr_warmup_iters", "4", "--lambda_GAN", "0")
    before = [p.detach().clone() for p in model.netG.parameters()]
    model.train_step(batch_of(aligned_dataroot, 1))
    assert model.optimizer_G.param_groups[0]["lr"] == 0.0002  # restored after the step
    # Adam's first step moves a weight with a clear gradient by about the rate used: lr / 4.
    step = max(float((p.detach() - b).abs().max()) for b, p in zip(before, model.netG.parameters()))
    assert step == pytest.approx(0.0002 / 4, rel=1e-3)


@pytest.mark.parametrize("lambda_GAN, nets", [("1", ("netD",)), ("0", ("netG",))])
def test_accumulating_two_batches_of_one_equals_one_batch_of_two(aligned_dataroot, tmp_path, lambda_GAN, nets):
    # D's update is the same. G's is the same without the GAN term: with it, the first batch's
    # adversarial gradient comes from D before its update (D changes once, at the last batch).
    flags = ("--norm", "instance", "--no_dropout", "--serial_batches", "--no_flip", "--lambda_GAN", lambda_GAN)
    torch.manual_seed(0)
    accumulated, _ = pix2pix(aligned_dataroot, tmp_path, *flags, "--grad_accum_steps", "2")
    torch.manual_seed(0)
    together, _ = pix2pix(aligned_dataroot, tmp_path, *flags)
    pair = batch_of(aligned_dataroot, 2)
    start = {k: v.clone() for k, v in accumulated.netG.state_dict().items()}
    accumulated.train_step({"A": pair["A"][:1], "B": pair["B"][:1], "A_paths": pair["A_paths"][:1]})
    assert all(torch.equal(v, accumulated.netG.state_dict()[k]) for k, v in start.items())  # no update yet
    accumulated.train_step({"A": pair["A"][1:], "B": pair["B"][1:], "A_paths": pair["A_paths"][1:]})
    together.train_step(pair)
    # The gradients of the update (still held after it): the same up to rounding. The weights
    # too, but for biases before instance norm, whose gradient is 0 up to rounding and which
    # Adam moves by up to the rate in either direction.
    for name in nets:
        net_scale = max(float(p.grad.abs().max()) for p in getattr(together, name).parameters())
        for (key, a), b in zip(getattr(accumulated, name).named_parameters(), getattr(together, name).parameters()):
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5 * net_scale, msg=f"{name}.{key}")
    assert not torch.equal(start["model.model.0.weight"], accumulated.netG.state_dict()["model.model.0.weight"])


def test_gradients_are_clipped_to_the_norm(aligned_dataroot, tmp_path):
    grads = nn.Linear(4, 4)
    grads.weight.grad = torch.full_like(grads.weight, 3.0)
    grads.bias.grad = torch.full_like(grads.bias, 3.0)
    clip_gradients(torch.optim.SGD(grads.parameters(), lr=1.0), 0.5)
    total = torch.cat([grads.weight.grad.flatten(), grads.bias.grad.flatten()]).norm()
    assert float(total) == pytest.approx(0.5, rel=1e-5)
    model, _ = pix2pix(aligned_dataroot, tmp_path, "--max_grad_norm", "0.01")
    model.train_step(batch_of(aligned_dataroot, 1))
    for optimizer in model.optimizers:  # the gradients of the last step are still there
        norm = torch.cat([p.grad.flatten() for g in optimizer.param_groups for p in g["params"]]).norm()
        assert float(norm) <= 0.01 * (1 + 1e-4)


def test_weight_average_moves_by_the_decay(aligned_dataroot, tmp_path):
    model, opt = pix2pix(aligned_dataroot, tmp_path, "--ema_decay", "0.75", "--ema_rampup", "0")
    model.setup(opt)
    start = {k: v.clone() for k, v in model.netG.state_dict().items()}
    model.train_step(batch_of(aligned_dataroot, 1))
    average = model.weight_average.networks()["G"].state_dict()
    for key, new in model.netG.state_dict().items():
        if new.is_floating_point() and "running" not in key:
            torch.testing.assert_close(average[key], 0.75 * start[key] + 0.25 * new, rtol=0, atol=1e-6)


def test_a_weights_only_resume_starts_the_average_from_the_loaded_weights(aligned_dataroot, tmp_path):
    """--ema_decay with --continue_train from weight files alone (no full checkpoint): the
    average goes on from the loaded generator (or its own _ema file), not from this process's
    random initialisation; StyleGAN2's ramp-up is for an average of initial weights, so it is off."""
    one_epoch = ["--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "2", "--no_html"]
    assert train_script.main(tiny_args("pix2pix", aligned_dataroot, tmp_path, "src", *one_epoch, "--seed", "1")) == 0
    for name in ("G", "D"):  # weights only, as from the reference or copied by hand
        (tmp_path / "wo").mkdir(exist_ok=True)
        shutil.copy(tmp_path / "src" / f"latest_net_{name}.pth", tmp_path / "wo")
    resumed = tiny_args("pix2pix", aligned_dataroot, tmp_path, "wo", *one_epoch, "--seed", "2", "--continue_train",
                        "--ema_decay", "0.999")
    assert train_script.main(resumed) == 0
    loaded = torch.load(tmp_path / "src" / "latest_net_G.pth", weights_only=True)
    average = torch.load(tmp_path / "wo" / "latest_net_G_ema.pth", weights_only=True)
    # 2 Adam steps move a weight by about 2 lr; the average moves 0.1% of that way.
    assert max(float((average[k] - loaded[k]).abs().max()) for k in loaded
               if loaded[k].is_floating_point() and "running" not in k) < 1e-5


def test_resume_with_warmup_accumulation_average_and_two_rates_equals_one_run(aligned_dataroot, tmp_path):
    extra = ["--n_epochs", "1", "--n_epochs_decay", "1", "--max_dataset_size", "4", "--seed", "7",
             "--save_latest_freq", "3", "--lr_warmup_iters", "3", "--grad_accum_steps", "2",
             "--ema_decay", "0.9", "--lr_D", "0.0004", "--max_grad_norm", "1", "--no_html"]
    assert train_script.main(tiny_args("pix2pix", aligned_dataroot, tmp_path, "one", *extra)) == 0
    interrupted = tiny_args("pix2pix", aligned_dataroot, tmp_path, "two", *extra)
    # Stopped after 5 steps: inside an accumulation, in the second epoch.
    assert train_script.main(interrupted, hooks=[SignalDuringStep(5)]) == 128 + signal.SIGINT
    assert train_script.main(interrupted + ["--continue_train"]) == 0
    assert_same_networks(tmp_path / "one", tmp_path / "two", ("G", "D", "G_ema"))
    assert (tmp_path / "one" / "2_net_G_ema.pth").is_file()
    # test.py --use_ema runs the average, which differs from the last weights.
    results = {}
    for flags in ([], ["--use_ema"]):
        out = tmp_path / ("ema" if flags else "plain")
        assert test_script.main(["--dataroot", str(aligned_dataroot), "--name", "one", "--model", "pix2pix",
                                 "--checkpoints_dir", str(tmp_path), "--results_dir", str(out),
                                 "--gpu_ids", "-1", "--num_test", "1", "--metrics", "l1", *flags]) == 0
        results[bool(flags)] = sorted(p.read_bytes() for p in out.rglob("*fake_B.png"))
    assert results[True] and results[True] != results[False]


@pytest.mark.parametrize("which", ["G", "D"])
def test_spectral_norm_changes_keys_only_when_on_and_loads(aligned_dataroot, tmp_path, which):
    plain, _ = pix2pix(aligned_dataroot, tmp_path)
    model, _ = pix2pix(aligned_dataroot, tmp_path, f"--spectral_norm_{which}")
    net, other = getattr(model, "net" + which), getattr(model, "netD" if which == "G" else "netG")
    keys = set(net.state_dict())
    assert any(k.endswith("parametrizations.weight.original") for k in keys)
    assert set(other.state_dict()) == set(getattr(plain, "netD" if which == "G" else "netG").state_dict())
    copy, _ = pix2pix(aligned_dataroot, tmp_path, f"--spectral_norm_{which}", "--seed", "5")
    target = getattr(copy, "net" + which)
    target.load_state_dict(net.state_dict())
    x = torch.rand(1, 3 if which == "G" else 6, 128, 128)
    net.eval()
    target.eval()
    with torch.no_grad():
        torch.testing.assert_close(target(x), net(x))


@pytest.mark.parametrize("netG, side", [("unet_128", 128), ("resnet_6blocks", 32)])
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_resize_upsampling_replaces_every_transposed_conv(aligned_dataroot, tmp_path, netG, side, mode):
    model, _ = pix2pix(aligned_dataroot, tmp_path, "--netG", netG, "--upsample", mode)
    layers = list(model.netG.modules())
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in layers)
    assert sum(isinstance(m, nn.Upsample) and m.mode == mode for m in layers) == (7 if netG == "unet_128" else 2)
    out = model.netG(torch.rand(1, 3, side, side))
    assert out.shape == (1, 3, side, side)
    # Each resize is followed by a 3x3 conv with the channels of the transposed conv it replaces.
    plain, _ = pix2pix(aligned_dataroot, tmp_path, "--netG", netG)
    before = [(m.in_channels, m.out_channels) for m in plain.netG.modules() if isinstance(m, nn.ConvTranspose2d)]
    after = [(b.in_channels, b.out_channels) for a, b in zip(layers, layers[1:]) if isinstance(a, nn.Upsample)]
    assert after == before and all(isinstance(b, nn.Conv2d) and b.kernel_size == (3, 3)
                                   for a, b in zip(layers, layers[1:]) if isinstance(a, nn.Upsample))


@pytest.mark.parametrize("mode, gates, spatial", [("up", 6, 0), ("down", 0, 6), ("both", 6, 6)])
def test_attention_on_every_inner_unet_level(aligned_dataroot, tmp_path, mode, gates, spatial):
    from models.networks.attention import AttentionGate, SpatialAttention

    model, _ = pix2pix(aligned_dataroot, tmp_path, "--attention", mode, "--upsample", "bilinear")
    layers = list(model.netG.modules())
    assert sum(isinstance(m, AttentionGate) for m in layers) == gates  # unet_128: 7 levels, 6 inner
    assert sum(isinstance(m, SpatialAttention) for m in layers) == spatial
    plain, _ = pix2pix(aligned_dataroot, tmp_path, "--upsample", "bilinear")
    extra = set(model.netG.state_dict()) - set(plain.netG.state_dict())
    assert extra and all(".gate." in k or ".spatial." in k for k in extra)
    model.train_step(batch_of(aligned_dataroot, 1))
    gate = next(m for m in layers if isinstance(m, (AttentionGate, SpatialAttention)))
    assert all(p.grad is not None for p in gate.parameters())  # attention is trained
    with pytest.raises(Exception, match="U-Net"):
        pix2pix(aligned_dataroot, tmp_path, "--attention", mode, "--netG", "resnet_6blocks", "--crop_size", "32")


def test_multiscale_discriminators_and_feature_matching(aligned_dataroot, tmp_path):
    from models.networks import MultiscaleDiscriminator

    model, _ = pix2pix(aligned_dataroot, tmp_path, "--num_D", "2", "--lambda_feat", "10")
    assert isinstance(model.netD, MultiscaleDiscriminator) and len(model.netD.scales) == 2
    outputs = model.netD(torch.rand(1, 6, 128, 128))
    # pix2pixHD's PatchGAN pads 2: 128 -> 65 -> 33 -> 17 (stride 2) -> 18 -> 19 (stride 1); 64 -> ... -> 11.
    assert [o[-1].shape[-1] for o in outputs] == [19, 11]
    assert len(outputs[0]) == 5  # four activations, then the prediction
    model.train_step(batch_of(aligned_dataroot, 1))
    losses = model.get_current_losses()
    assert losses["G_feat"] > 0
    assert all(p.grad is not None for p in model.netD.scales[1].parameters())  # the coarse D is trained
    # Defaults: one plain discriminator, the reference's keys.
    plain, _ = pix2pix(aligned_dataroot, tmp_path)
    assert not isinstance(plain.netD, MultiscaleDiscriminator)
    assert {"scales.0." + k for k in plain.netD.state_dict()} <= set(model.netD.state_dict())


@pytest.fixture(scope="module")
def random_vgg_file(tmp_path_factory):
    """torchvision's VGG-19 layers up to relu5_1 with random weights, as a state_dict file."""
    return write_random_vgg(tmp_path_factory.mktemp("vgg") / "vgg19_random.pth", "vgg19")


def test_perceptual_and_style_losses_train_g_only(aligned_dataroot, tmp_path, random_vgg_file):
    model, _ = pix2pix(aligned_dataroot, tmp_path, "--lambda_perceptual", "1", "--lambda_style", "100",
                       "--vgg_weights", str(random_vgg_file), "--lambda_GAN", "0", "--crop_size", "64",
                       "--load_size", "64", "--netG", "resnet_6blocks")
    batch = batch_of(aligned_dataroot, 1)
    batch = {**batch, "A": batch["A"][..., :64, :64], "B": batch["B"][..., :64, :64]}
    model.train_step(batch)
    losses = model.get_current_losses()
    assert losses["G_perceptual"] > 0 and losses["G_style"] > 0
    assert all(not p.requires_grad for p in model.criterionVGG.parameters())
    same = model.criterionVGG(model.real_B, model.real_B)
    assert float(same[0]) == 0 and float(same[1]) == 0


@pytest.mark.parametrize("form, file", [("pix2pixhd", "vgg19-dcbb9e9d.pth"), ("johnson", "vgg16-397923af.pth")])
def test_missing_vgg_weights_is_one_error_line(aligned_dataroot, tmp_path, monkeypatch, capsys, form, file):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_hub"))
    args = tiny_args("pix2pix", aligned_dataroot, tmp_path, "run", "--lambda_perceptual", "1",
                     "--perceptual_form", form)
    assert train_script.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and file in err[0]
