"""The losses and networks as their authors define them, checked against hand computations
and the values the papers' code uses (issue 22): feature matching (pix2pixHD, SPADE), the VGG
losses (pix2pixHD/SPADE, Johnson et al.), the style loss (Gatys/Johnson), spectral norm
placement (SNGAN, SPADE) and pix2pixHD's discriminator padding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.losses import feature_matching
from models.networks import define_D
from models.perceptual import PERCEPTUAL_FORMS, VGG19_LAYERS, VGGLoss, gram, vgg_layers


def _scales(num_D: int, n_features: int, value: float):
    """Per scale: ``n_features`` feature maps of constant ``value`` (ones of the real pair: 0), then a prediction."""
    fake = [[torch.full((1, 2, 3, 3), value) for _ in range(n_features)] + [torch.zeros(1, 1, 2, 2)]
            for _ in range(num_D)]
    real = [[torch.zeros(1, 2, 3, 3) for _ in range(n_features)] + [torch.zeros(1, 1, 2, 2)] for _ in range(num_D)]
    return fake, real


@pytest.mark.parametrize("weighting, num_D, n_layers_D, per_term", [
    ("pix2pixhd", 2, 3, 1 / 2),      # 1/2 * 4/4: the peer-stated value
    ("pix2pixhd", 1, 3, 1.0),
    ("pix2pixhd", 3, 2, 1 / 3 * 4 / 3),
    ("spade", 2, 3, 1 / 2),
    ("spade", 3, 2, 1 / 3),
])
def test_feature_matching_weights_each_term_as_the_papers(weighting, num_D, n_layers_D, per_term):
    # pix2pixHD's PatchGAN has n_layers_D + 1 intermediate outputs; each L1 term is 0.3 here.
    fake, real = _scales(num_D, n_layers_D + 1, 0.3)
    expected = num_D * (n_layers_D + 1) * per_term * 0.3
    assert float(feature_matching(fake, real, weighting)) == pytest.approx(expected, rel=1e-6)


def test_feature_matching_of_a_pix2pix_step_is_the_pix2pixhd_sum(aligned_dataroot, tmp_path):
    from tests.test_training_options import batch_of, pix2pix

    model, _ = pix2pix(aligned_dataroot, tmp_path, "--num_D", "2", "--lambda_feat", "10")
    model.train_step(batch_of(aligned_dataroot, 1))
    with torch.no_grad():
        fake = model.netD(torch.cat((model.real_A, model.fake_B), 1))
        real = model.netD(torch.cat((model.real_A, model.real_B), 1))
    # 2 scales x 4 activations, 1/2 each, times lambda_feat 10 (pix2pixHD_model.py's loss_G_GAN_Feat)
    by_hand = sum(0.5 * (f - r).abs().mean() for fs, rs in zip(fake, real) for f, r in zip(fs[:-1], rs[:-1])) * 10
    torch.testing.assert_close(model.loss_G_feat.detach(), by_hand, rtol=1e-5, atol=1e-6)


def test_pix2pixhd_discriminators_pad_two():
    single = define_D(6, 8, "basic")
    multi = define_D(6, 8, "basic", num_D=2)
    pads = lambda net: {m.padding for m in net.modules() if isinstance(m, nn.Conv2d)}  # noqa: E731
    assert pads(single) == {(1, 1)} and pads(multi) == {(2, 2)}
    # ceil((4 - 1) / 2) = 2: each stride-2 conv maps s to s/2 + 1, each stride-1 conv s to s + 1.
    sides = [out[-1].shape[-1] for out in multi(torch.rand(1, 6, 64, 64))]
    assert sides == [11, 7]  # 64 -> 33 -> 17 -> 9 -> 10 -> 11; 32 -> 17 -> 9 -> 5 -> 6 -> 7
    # Same shapes as the reference's D: its weights load.
    assert {k: v.shape for k, v in multi.scales[0].state_dict().items()} == \
        {k: v.shape for k, v in single.state_dict().items()}


@pytest.mark.parametrize("placement, normalized", [("none", []), ("sngan", [0, 1, 2, 3, 4]), ("spade", [1, 2, 3]),
                                                   (True, [0, 1, 2, 3, 4]), (False, [])])
def test_spectral_norm_placements(placement, normalized):
    net = define_D(6, 8, "basic", spectral_norm=placement)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5
    assert [i for i, c in enumerate(convs) if hasattr(c, "parametrizations")] == normalized


def test_vgg19_layers_are_pix2pixhds_slices():
    features = vgg_layers("vgg19", VGG19_LAYERS[-1])
    # pix2pixHD's slices end at features 2, 7, 12, 21, 30: their last layers are relu1_1 .. relu5_1.
    assert [end - 1 for end in (2, 7, 12, 21, 30)] == list(VGG19_LAYERS)
    assert all(isinstance(features[i], nn.ReLU) for i in VGG19_LAYERS)
    convs_before = [sum(isinstance(m, nn.Conv2d) for m in features[:i + 1]) for i in VGG19_LAYERS]
    assert convs_before == [1, 3, 5, 9, 13]  # conv1_1, conv2_1, conv3_1, conv4_1, conv5_1
    form = PERCEPTUAL_FORMS.get("pix2pixhd")
    assert form.weights == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0) and form.network == "vgg19"
    assert not form.imagenet_input


class _Probe(nn.Module):
    """Stand-in for VGG's features: identity layers, so each 'activation' is the input itself."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Identity() for _ in range(n))

    def __iter__(self):
        return iter(self.layers)

    def eval(self):
        return self


def test_vgg_losses_and_style_by_hand():
    torch.manual_seed(0)
    fake, real = torch.rand(2, 3, 4, 4) * 2 - 1, torch.rand(2, 3, 4, 4) * 2 - 1
    # pix2pixHD: sum of w_i * mean |f - r|, the image as it is (no ImageNet normalization).
    loss = VGGLoss(_Probe(30), PERCEPTUAL_FORMS.get("pix2pixhd"))
    perceptual, style = loss(fake, real)
    l1 = (fake - real).abs().mean()
    torch.testing.assert_close(perceptual, l1 * (1 / 32 + 1 / 16 + 1 / 8 + 1 / 4 + 1))
    # Style: ||G(f) - G(r)||_F^2 per image, G = F F^T / (C H W), mean over the batch; 5 layers x 1/20.
    def gram_by_hand(x):
        flat = x.reshape(2, 3, 16)
        return torch.einsum("nci,ndi->ncd", flat, flat) / 48
    frob = ((gram_by_hand(fake) - gram_by_hand(real)) ** 2).sum(dim=(1, 2)).mean()
    torch.testing.assert_close(style, frob * 5 / 20)
    torch.testing.assert_close(gram(fake), gram_by_hand(fake))
    # Johnson: ||phi(f) - phi(r)||_2^2 / (C H W) at one layer (relu3_3), ImageNet-normalized input.
    johnson = VGGLoss(_Probe(23), PERCEPTUAL_FORMS.get("johnson"))
    p, _ = johnson(fake, real)
    norm = lambda x: ((x + 1) / 2 - johnson.mean) / johnson.std  # noqa: E731
    torch.testing.assert_close(p, ((norm(fake) - norm(real)) ** 2).sum(dim=(1, 2, 3)).mean() / 48)


def test_ema_rampup_is_stylegan2s():
    from models.training_step import ema_decay_at

    # StyleGAN2-ADA: beta = 0.5 ** (batch / min(ema_kimg * 1000, cur_nimg * ema_rampup)); batch 4, 10 kimg.
    batch, ema_nimg, rampup = 4, 10_000, 0.05
    decay = 0.5 ** (batch / ema_nimg)
    for updates in (0, 1, 10, 100, 1000, 49_999, 50_000, 10 ** 6):
        theirs = 0.5 ** (batch / max(min(ema_nimg, updates * batch * rampup), 1e-8))
        assert ema_decay_at(decay, rampup, updates) == pytest.approx(theirs, rel=1e-9, abs=1e-300)
    assert ema_decay_at(0.999, 0.0, 0) == 0.999  # --ema_rampup 0: the plain decay
    # After 1000 updates at 0.999 the plain average still holds 0.999^1000 = 37% of the initial weights.
    share = lambda r: float(torch.tensor([ema_decay_at(0.999, r, t) for t in range(1000)]).prod())  # noqa: E731
    assert share(0.0) == pytest.approx(0.3677, abs=1e-4)
    assert share(0.05) == 0.0  # the first update copies the weights


def test_no_average_step_on_a_skipped_fp16_step(aligned_dataroot, tmp_path):
    from models.training_step import WeightAverage
    from tests.test_training_options import batch_of, pix2pix

    model, _ = pix2pix(aligned_dataroot, tmp_path, "--lambda_GAN", "0", "--ema_decay", "0.9")
    model.setup(model.opt)
    assert isinstance(model.weight_average, WeightAverage) and model.weight_average.rampup == 0.05
    # A CPU GradScaler stands in for --amp fp16's: an overflowing loss makes it skip the step.
    scaler = model.scalers[id(model.optimizer_G)] = torch.amp.GradScaler("cpu")
    model.set_input(batch_of(aligned_dataroot, 1))
    model.forward()
    before = {k: v.clone() for k, v in model.weight_average.averages["G"].state_dict().items()}
    weights = {k: v.clone() for k, v in model.netG.state_dict().items()}
    model.update(model.optimizer_G, model.fake_B.mean() * float("inf"))
    assert scaler.get_scale() < 65536.0  # skipped: the scale went down
    for k, v in model.weight_average.averages["G"].state_dict().items():
        assert torch.equal(v, before[k]) and torch.equal(model.netG.state_dict()[k], weights[k]), k
    model.forward()
    model.update(model.optimizer_G, (model.fake_B - model.real_B).abs().mean())
    moved = model.weight_average.averages["G"].state_dict()
    assert any(not torch.equal(moved[k], before[k]) for k in before)


@pytest.mark.parametrize("mode, same_G", [("exact", True), ("interleaved", False)])
def test_exact_accumulation_of_two_batches_of_one_is_one_batch_of_two(aligned_dataroot, tmp_path, mode, same_G):
    """StudioGAN's order: with instance norm, 2 x 1 gives the gradients of a batch of 2, G's
    adversarial term included; the interleaved form differs there (G's first batch sees D before its step)."""
    from tests.test_training_options import batch_of, pix2pix

    flags = ("--norm", "instance", "--no_dropout", "--serial_batches", "--no_flip", "--gan_mode", "lsgan")
    torch.manual_seed(0)
    accumulated, _ = pix2pix(aligned_dataroot, tmp_path, *flags, "--grad_accum_steps", "2", "--grad_accum_mode", mode)
    torch.manual_seed(0)
    together, _ = pix2pix(aligned_dataroot, tmp_path, *flags)
    pair = batch_of(aligned_dataroot, 2)
    for i in range(2):
        accumulated.train_step({"A": pair["A"][i:i + 1], "B": pair["B"][i:i + 1], "A_paths": pair["A_paths"][i:i + 1]})
    together.train_step(pair)
    assert accumulated.train_steps == 2 and not accumulated.pending_batches
    for name, expect_same in (("netD", True), ("netG", same_G)):
        scale = max(float(p.grad.abs().max()) for p in getattr(together, name).parameters())
        close = all(torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-5 * scale)
                    for a, b in zip(getattr(accumulated, name).parameters(), getattr(together, name).parameters()))
        assert close == expect_same, name


def test_exact_accumulation_resumes_inside_an_accumulation(aligned_dataroot, tmp_path):
    import signal

    import train as train_script
    from tests.helpers import assert_same_networks, tiny_args
    from tests.test_resume import SignalDuringStep

    extra = ["--grad_accum_steps", "2", "--grad_accum_mode", "exact", "--n_epochs", "1", "--n_epochs_decay", "0",
             "--max_dataset_size", "4", "--seed", "3", "--no_html", "--display_freq", "100", "--netG", "unet_64",
             "--load_size", "64", "--crop_size", "64", "--ngf", "4", "--ndf", "4"]
    assert train_script.main(tiny_args("pix2pix", aligned_dataroot, tmp_path, "one", *extra)) == 0
    two = tiny_args("pix2pix", aligned_dataroot, tmp_path, "two", *extra)
    # Stopped while step 4 runs: after step 3, one batch of the second accumulation is pending.
    assert train_script.main(two, hooks=[SignalDuringStep(4)]) == 128 + signal.SIGINT
    assert train_script.main(two + ["--continue_train"]) == 0
    assert_same_networks(tmp_path / "one", tmp_path / "two", ("G", "D"))


@pytest.mark.parametrize("model", ["cycle_gan", "template"])
def test_exact_accumulation_is_refused_where_it_changes_nothing(model):
    from options import parse_options
    from util.errors import UserError

    with pytest.raises(UserError, match=f"--grad_accum_mode is not used by --model {model}"):
        parse_options(["--dataroot", "x", "--model", model, "--grad_accum_steps", "2", "--grad_accum_mode", "exact"])


def test_exact_accumulation_of_cut_steps_d_then_g_once(unaligned_dataroot, tmp_path):
    from models import create_model
    from options import parse_options
    from tests.helpers import tiny_args

    opt = parse_options(tiny_args("cut", unaligned_dataroot, tmp_path, "run", "--grad_accum_steps", "2",
                                  "--grad_accum_mode", "exact"), is_train=True)
    model = create_model(opt)
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1, "A_paths": ["a"]}
    model.data_dependent_initialize(batch)
    model.setup(opt)
    D0 = [p.detach().clone() for p in model.netD.parameters()]
    G0 = [p.detach().clone() for p in model.netG.parameters()]
    model.train_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(D0, model.netD.parameters()))  # pending: nothing ran
    model.train_step(batch)
    assert model.optimizer_D.state and model.optimizer_G.state
    assert not all(torch.equal(a, b) for a, b in zip(D0, model.netD.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(G0, model.netG.parameters()))
    assert float(model.loss_NCE) > 0
