"""CUT / FastCUT: PatchNCE by hand, the modes' defaults, the flip, CUT's weight layout, resume."""

import signal

import pytest
import torch
import torch.nn.functional as F

import test as test_script
import train as train_script
from data import create_dataloader, create_dataset
from models import create_model
from models.networks import load_network_weights
from models.networks.antialias import AntialiasResnetGenerator, Downsample, Upsample
from models.patchnce import patchnce_loss
from options import parse_options
from tests.helpers import assert_same_networks, tiny_args
from tests.test_resume import SignalDuringStep


def test_patchnce_matches_a_hand_computation():
    torch.manual_seed(0)
    n, p, c, t = 2, 3, 4, 0.07
    q = F.normalize(torch.randn(n * p, c), dim=1)
    k = F.normalize(torch.randn(n * p, c), dim=1)
    got = patchnce_loss(q, k, n, temperature=t)
    expected = []
    for img in range(n):
        for i in range(p):
            row = img * p + i
            positive = float(q[row] @ k[row]) / t
            # Negatives: the other locations of the same image only.
            negatives = [float(q[row] @ k[img * p + j]) / t for j in range(p) if j != i]
            # The query's own location is filled with -10 (about zero weight), not dropped.
            logits = torch.tensor([positive] + [-10.0 / t] + negatives)
            expected.append(float(torch.logsumexp(logits, 0) - positive))
    torch.testing.assert_close(got, torch.tensor(expected), atol=1e-5, rtol=1e-5)
    # Identical queries and keys, orthogonal across locations: the positive wins by far.
    eye = torch.eye(p)
    assert float(patchnce_loss(eye, eye, 1, temperature=t).max()) < 1e-4
    # With the minibatch's negatives, the other image's keys compete as well: a higher loss.
    assert float(patchnce_loss(q, k, n, t, all_negatives_from_minibatch=True).mean()) > float(got.mean())


def test_patchnce_sends_no_gradient_through_the_keys():
    q = torch.randn(6, 4, requires_grad=True)
    k = torch.randn(6, 4, requires_grad=True)
    patchnce_loss(q, k, 2).sum().backward()
    assert q.grad is not None and k.grad is None


def options(mode, root, tmp_path, *extra):
    return parse_options(tiny_args("cut", root, tmp_path, "run", "--CUT_mode", mode, *extra), is_train=True)


def test_modes_set_the_cut_repository_defaults(unaligned_dataroot, tmp_path):
    cut = options("CUT", unaligned_dataroot, tmp_path)
    assert (cut.lambda_GAN, cut.lambda_NCE, cut.nce_idt, cut.flip_equivariance) == (1.0, 1.0, True, False)
    assert (cut.nce_layers, cut.nce_T, cut.netF, cut.pool_size, cut.gan_mode) == ("0,4,8,12,16", 0.07,
                                                                                  "mlp_sample", 0, "lsgan")
    assert (cut.n_epochs, cut.n_epochs_decay, cut.init_type, cut.no_dropout) == (200, 200, "xavier", True)
    fast = options("FastCUT", unaligned_dataroot, tmp_path)
    assert (fast.lambda_NCE, fast.nce_idt, fast.flip_equivariance) == (10.0, False, True)
    assert (fast.n_epochs, fast.n_epochs_decay) == (150, 50)
    mine = options("fastcut", unaligned_dataroot, tmp_path, "--lambda_NCE", "3", "--nce_idt", "--n_epochs", "5")
    assert (mine.lambda_NCE, mine.nce_idt, mine.n_epochs, mine.flip_equivariance) == (3.0, True, 5, True)
    assert options("CUT", unaligned_dataroot, tmp_path, "--flip_equivariance", "false").flip_equivariance is False


def built_model(mode, root, tmp_path, *extra):
    opt = options(mode, root, tmp_path, *extra)
    model = create_model(opt)
    batch = next(iter(create_dataloader(opt, create_dataset(opt), shuffle=False)))
    model.data_dependent_initialize(batch)
    model.setup(opt)
    model.set_input(batch)
    return model


def test_separate_norms_spectral_norm_and_d_rate_reach_cut(unaligned_dataroot, tmp_path):
    opt = options("CUT", unaligned_dataroot, tmp_path, "--norm", "instance", "--normD", "batch",
                  "--spectral_norm_D", "--lr_D", "0.0004")
    model = create_model(opt)
    kinds = {type(m).__name__ for m in model.netD.modules()}
    assert "BatchNorm2d" in kinds and not any("BatchNorm" in type(m).__name__ for m in model.netG.modules())
    assert any(k.endswith("parametrizations.weight.original") for k in model.netD.state_dict())
    assert model.optimizer_D.param_groups[0]["lr"] == 0.0004 and model.optimizer_G.param_groups[0]["lr"] == opt.lr


def test_netF_is_built_from_the_first_batch_and_trained_with_G(unaligned_dataroot, tmp_path):
    model = built_model("CUT", unaligned_dataroot, tmp_path)
    assert model.model_names == ["G", "F", "D"]
    # One MLP per NCE layer, sized by G's channels there (ngf 8: 3, 16, 32, 32, 32).
    widths = [getattr(model.netF, f"mlp_{i}")[0].in_features for i in range(5)]
    assert widths == [3, 16, 32, 32, 32]
    f_params = {id(p) for p in model.netF.parameters()}
    assert f_params <= {id(p) for group in model.optimizer_G.param_groups for p in group["params"]}


def test_fastcut_flips_the_input_and_the_query_features_back(unaligned_dataroot, tmp_path, monkeypatch):
    model = built_model("FastCUT", unaligned_dataroot, tmp_path)
    model.eval()  # dropout-free; eval only so that nothing else differs between calls
    seen = set()
    for seed in range(8):
        torch.manual_seed(seed)
        with torch.no_grad():
            model.forward_train()
        seen.add(model.flipped)
        real = model.real_A.flip(3) if model.flipped else model.real_A
        torch.testing.assert_close(model.fake_B, model.netG(real), rtol=0, atol=0)
    assert seen == {True, False}

    # nce_loss with the flip = nce_loss without it on queries whose features come flipped.
    src, tgt = model.real_A, model.fake_B.detach()
    model.flipped = True
    torch.manual_seed(1)
    flipped = model.nce_loss(src, tgt)
    G = model.netG

    def G_flipping_tgt(x, layers=None, encode_only=False):
        feats = G(x, layers, encode_only=encode_only)
        return [f.flip(3) for f in feats] if x is tgt else feats

    monkeypatch.setattr(model, "netG", G_flipping_tgt)
    model.flipped = False
    torch.manual_seed(1)
    torch.testing.assert_close(model.nce_loss(src, tgt), flipped, rtol=0, atol=0)
    monkeypatch.setattr(model, "netG", G)
    torch.manual_seed(1)
    assert not torch.allclose(model.nce_loss(src, tgt), flipped)


def cut_repository_layout(ngf, n_blocks, input_nc=3, output_nc=3):
    """Keys and shapes of the CUT repository's anti-aliased ``ResnetGenerator`` state dict, from
    its code (instance norm: convs with bias; ``Downsample``/``Upsample`` save ``filt``)."""
    layout = {"model.1.weight": (ngf, input_nc, 7, 7), "model.1.bias": (ngf,),
              "model.4.weight": (2 * ngf, ngf, 3, 3), "model.4.bias": (2 * ngf,),
              "model.7.filt": (2 * ngf, 1, 3, 3),
              "model.8.weight": (4 * ngf, 2 * ngf, 3, 3), "model.8.bias": (4 * ngf,),
              "model.11.filt": (4 * ngf, 1, 3, 3)}
    for b in range(12, 12 + n_blocks):
        for conv in (1, 5):
            layout[f"model.{b}.conv_block.{conv}.weight"] = (4 * ngf, 4 * ngf, 3, 3)
            layout[f"model.{b}.conv_block.{conv}.bias"] = (4 * ngf,)
    up = 12 + n_blocks
    layout.update({f"model.{up}.filt": (4 * ngf, 1, 4, 4),
                   f"model.{up + 1}.weight": (2 * ngf, 4 * ngf, 3, 3), f"model.{up + 1}.bias": (2 * ngf,),
                   f"model.{up + 4}.filt": (2 * ngf, 1, 4, 4),
                   f"model.{up + 5}.weight": (ngf, 2 * ngf, 3, 3), f"model.{up + 5}.bias": (ngf,),
                   f"model.{up + 9}.weight": (output_nc, ngf, 7, 7), f"model.{up + 9}.bias": (output_nc,)})
    return layout


def test_generator_has_the_cut_repository_layout():
    net = AntialiasResnetGenerator(3, 3, 64, torch.nn.InstanceNorm2d, n_blocks=9)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == cut_repository_layout(64, 9)
    state = net.state_dict()
    # The fixed filters: binomial [1, 2, 1] (sum 1) down, [1, 3, 3, 1] x 4 (sum 4) up.
    down = torch.tensor([1.0, 2.0, 1.0])
    up = torch.tensor([1.0, 3.0, 3.0, 1.0])
    torch.testing.assert_close(state["model.7.filt"][0, 0], torch.outer(down, down) / 16)
    torch.testing.assert_close(state["model.21.filt"][5, 0], torch.outer(up, up) / 64 * 4)
    plain = AntialiasResnetGenerator(3, 3, 8, torch.nn.InstanceNorm2d, n_blocks=6, antialias=False, antialias_up=False)
    from models.networks import ResnetGenerator
    reference = ResnetGenerator(3, 3, 8, torch.nn.InstanceNorm2d, n_blocks=6)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in
                                                                   reference.state_dict().items()}


def test_blur_layers_keep_flat_images_flat_and_resample_by_two():
    x = torch.full((1, 4, 8, 8), 0.3)
    torch.testing.assert_close(Downsample(4)(x), torch.full((1, 4, 4, 4), 0.3))
    torch.testing.assert_close(Upsample(4)(x), torch.full((1, 4, 16, 16), 0.3))


def test_weights_in_the_cut_layout_load_and_test_py_uses_them(unaligned_dataroot, tmp_path):
    torch.manual_seed(0)
    state = {k: torch.randn(shape) * 0.05 for k, shape in cut_repository_layout(8, 6).items()}
    reference = AntialiasResnetGenerator(3, 3, 8, torch.nn.InstanceNorm2d, n_blocks=6)
    for k in state:
        if k.endswith("filt"):
            state[k] = reference.state_dict()[k].clone()
    load_network_weights(reference, state)
    run = tmp_path / "pretrained" / "horse2zebra_cut"
    run.mkdir(parents=True)
    torch.save(state, run / "latest_net_G.pth")  # as the CUT repository publishes them: G only
    results = tmp_path / "r"
    args = ["--dataroot", str(unaligned_dataroot), "--name", "horse2zebra_cut", "--model", "cut",
            "--checkpoints_dir", str(tmp_path / "pretrained"), "--results_dir", str(results), "--netG",
            "resnet_6blocks", "--ngf", "8", "--crop_size", "32", "--load_size", "32", "--gpu_ids", "-1",
            "--num_threads", "0", "--num_test", "1", "--metrics", "none"]
    assert test_script.main(args) == 0
    # A folder of A images only: translated, nothing scored.
    single = [a if a != str(unaligned_dataroot) else str(unaligned_dataroot / "testA") for a in args]
    assert test_script.main(single[:-2] + ["--dataset_mode", "single", "--metrics", "psnr"]) == 0
    opt = parse_options(args, is_train=False)
    model = create_model(opt)
    model.setup(opt)
    batch = next(iter(create_dataloader(opt, create_dataset(opt), shuffle=False)))
    model.set_input(batch)
    model.test()
    with torch.no_grad():
        # (The model runs faster conv implementations: the same weights, rounding differs.)
        torch.testing.assert_close(model.fake_B, reference(batch["A"]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("mode", ["CUT", "FastCUT"])
def test_stop_and_resume_equals_one_run(mode, unaligned_dataroot, tmp_path):
    extra = ["--CUT_mode", mode, "--n_epochs", "1", "--n_epochs_decay", "1", "--max_dataset_size", "4",
             "--seed", "7", "--save_latest_freq", "3", "--no_html", "--display_freq", "100"]
    one_go = tiny_args("cut", unaligned_dataroot, tmp_path, "one", *extra)
    assert train_script.main(one_go) == 0
    interrupted = tiny_args("cut", unaligned_dataroot, tmp_path, "two", *extra)
    assert train_script.main(interrupted, hooks=[SignalDuringStep(5)]) == 128 + signal.SIGINT
    assert train_script.main(interrupted + ["--continue_train"]) == 0
    assert_same_networks(tmp_path / "one", tmp_path / "two", ("G", "F", "D"))


def test_l2_normalize_of_a_zero_row_has_a_finite_gradient():
    """A sampled feature of zeros (all channels 0 after a ReLU) stopped CUT with a NaN loss."""
    from models.patchnce import l2_normalize
    x = torch.tensor([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]], requires_grad=True)
    y = l2_normalize(x)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()  # was NaN: the gradient of sqrt at 0 times 0
    assert torch.equal(y, x.detach() / (x.detach().pow(2).sum(1, keepdim=True).sqrt() + 1e-7))  # CUT's values


def cut_repository_D_layout(ndf, n_layers=3, input_nc=3):
    """Keys and shapes of the CUT repository's anti-aliased ``NLayerDiscriminator`` with instance
    norm, from its code: [conv(stride 1), LeakyReLU, Downsample] then per inner level [conv,
    norm, LeakyReLU, Downsample], then [conv, norm, LeakyReLU] and the 1-channel conv."""
    layout = {"model.0.weight": (ndf, input_nc, 4, 4), "model.0.bias": (ndf,), "model.2.filt": (ndf, 1, 3, 3)}
    index, mult = 3, 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        layout.update({f"model.{index}.weight": (ndf * mult, ndf * prev, 4, 4), f"model.{index}.bias": (ndf * mult,),
                       f"model.{index + 3}.filt": (ndf * mult, 1, 3, 3)})
        index += 4
    prev, mult = mult, min(2 ** n_layers, 8)
    layout.update({f"model.{index}.weight": (ndf * mult, ndf * prev, 4, 4), f"model.{index}.bias": (ndf * mult,),
                   f"model.{index + 3}.weight": (1, ndf * mult, 4, 4), f"model.{index + 3}.bias": (1,)})
    return layout


def cut_repository_F_layout(channels, nc):
    """CUT's ``PatchSampleF`` with MLPs: ``mlp_<i>`` = Linear(c_i, nc), ReLU, Linear(nc, nc)."""
    layout = {}
    for i, c in enumerate(channels):
        layout.update({f"mlp_{i}.0.weight": (nc, c), f"mlp_{i}.0.bias": (nc,),
                       f"mlp_{i}.2.weight": (nc, nc), f"mlp_{i}.2.bias": (nc,)})
    return layout


def cut_model(unaligned_dataroot, tmp_path, *extra):
    opt = parse_options(tiny_args("cut", unaligned_dataroot, tmp_path, "run", *extra), is_train=True)
    return create_model(opt), opt


def test_discriminator_is_the_cut_repositorys(unaligned_dataroot, tmp_path):
    from models.networks import NLayerDiscriminator
    from models.networks.antialias import AntialiasNLayerDiscriminator

    model, _ = cut_model(unaligned_dataroot, tmp_path)
    assert isinstance(model.netD, AntialiasNLayerDiscriminator)
    assert {k: tuple(v.shape) for k, v in model.netD.state_dict().items()} == cut_repository_D_layout(8)
    net = AntialiasNLayerDiscriminator(3, 8, 4, torch.nn.InstanceNorm2d)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == cut_repository_D_layout(8, 4)
    # Stride-1 convs and blurred stride-2 downsampling: 32 -> 31 -> 15 -> 14 -> 7 -> 6 -> 3 -> 2 -> 1 ... -> 2x2.
    assert model.netD(torch.rand(1, 3, 32, 32)).shape == (1, 1, 2, 2)
    assert all(m.stride == (1, 1) for m in model.netD.modules() if isinstance(m, torch.nn.Conv2d))
    plain, _ = cut_model(unaligned_dataroot, tmp_path, "--no_antialias")
    assert type(plain.netD) is NLayerDiscriminator  # the reference's PatchGAN, as the CUT code's no_antialias


def test_a_run_of_the_cut_repository_continues_here(unaligned_dataroot, tmp_path):
    """latest_net_G/D/F.pth as the CUT repository writes them (its state_dict layouts) train on here."""
    torch.manual_seed(0)
    run = tmp_path / "horse2zebra_cut"
    run.mkdir()
    written = {}
    filters = {**AntialiasResnetGenerator(3, 3, 8, torch.nn.InstanceNorm2d, n_blocks=6).state_dict()}
    from models.networks.antialias import AntialiasNLayerDiscriminator
    d_filters = AntialiasNLayerDiscriminator(3, 8, 3, torch.nn.InstanceNorm2d).state_dict()
    # netF samples G's layers 0, 4, 8, 12, 16: the input (3), the two downsampling convs (16, 32), two blocks (32).
    for name, layout, fixed in (("G", cut_repository_layout(8, 6), filters), ("D", cut_repository_D_layout(8), d_filters),
                                ("F", cut_repository_F_layout([3, 16, 32, 32, 32], 16), {})):
        state = {k: fixed[k].clone() if k.endswith("filt") else torch.randn(shape) * 0.02 for k, shape in layout.items()}
        torch.save(state, run / f"latest_net_{name}.pth")
        written[name] = state
    args = tiny_args("cut", unaligned_dataroot, tmp_path, "horse2zebra_cut", "--continue_train", "--n_epochs", "1",
                     "--n_epochs_decay", "0", "--max_dataset_size", "2", "--no_html", "--seed", "1")
    opt = parse_options(args, is_train=True)
    model = create_model(opt)
    model.data_dependent_initialize(next(iter(create_dataloader(opt, create_dataset(opt)))))
    model.load_networks("latest")
    for name, state in written.items():
        loaded = model.unwrap(getattr(model, "net" + name)).state_dict()
        assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state), name
    assert train_script.main(args) == 0
    trained = torch.load(run / "latest_net_D.pth", weights_only=True)
    assert trained.keys() == written["D"].keys()
    assert not torch.equal(trained["model.0.weight"], written["D"]["model.0.weight"])  # D trained on


def test_decay_epochs_load_at_crop_size_and_the_short_batch_is_dropped(unaligned_dataroot, tmp_path):
    from data.sampler import SampleIndex
    from engine.hooks import Hook

    def item(opt, epoch):
        return create_dataset(opt)[SampleIndex(0, 5, epoch)]["A"]

    _, opt = cut_model(unaligned_dataroot, tmp_path, "--n_epochs", "1", "--n_epochs_decay", "1", "--no_flip")
    whole = create_dataset(opt).transform_for(load_size=32)
    from data.image_folder import load_image
    image = load_image(create_dataset(opt).A_paths[0], 3)
    # Epoch 2 is a decay epoch: the image resized to crop_size (32), so nothing is cropped (the CUT code).
    torch.testing.assert_close(item(opt, 2), whole(image))
    assert item(opt, 1).shape == (3, 32, 32) and not torch.equal(item(opt, 1), whole(image))  # 36 px, cropped
    _, jitter = cut_model(unaligned_dataroot, tmp_path, "--n_epochs", "1", "--n_epochs_decay", "1", "--no_flip",
                          "--decay_jitter")
    assert not torch.equal(item(jitter, 2), whole(image))

    class Count(Hook):
        steps = 0

        def after_step(self, trainer):
            Count.steps += 1
    args = tiny_args("cut", unaligned_dataroot, tmp_path, "short", "--n_epochs", "1", "--n_epochs_decay", "0",
                     "--max_dataset_size", "3", "--batch_size", "2", "--no_html", "--nce_idt", "false")
    assert train_script.main(args, hooks=[Count()]) == 0
    assert Count.steps == 1  # 3 images, batches of 2: the short last batch is left out
