"""Networks: every table entry builds and runs; layouts match the reference's checkpoints."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from models.networks import (
    DISCRIMINATORS,
    GENERATORS,
    INIT_TYPES,
    NORM_LAYERS,
    NLayerDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    clean_state_dict,
    define_D,
    define_G,
    generator_size_multiple,
    get_norm_layer,
    init_weights,
    load_network_weights,
)
from util.errors import UserError

KEYS_DIR = Path(__file__).parent / "data" / "reference_keys"


def valid_side(netG: str) -> int:
    """The smallest valid input side >= 32 (reflection padding needs a 2x2 bottleneck)."""
    multiple = generator_size_multiple(netG)
    return multiple * max(1, 32 // multiple)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def layout(net: nn.Module) -> list[str]:
    """One line per state_dict tensor, in the reference files' format."""
    return [f"{k}\t{tuple(v.shape)}\t{str(v.dtype).removeprefix('torch.')}"
            for k, v in net.state_dict().items()]


# ---------------------------------------------------------------- tables: build and run
@pytest.mark.parametrize("netG", sorted(GENERATORS))
@pytest.mark.parametrize("input_nc,output_nc", [(3, 3), (1, 3), (3, 1)])
def test_generator_forward_keeps_size(netG: str, input_nc: int, output_nc: int) -> None:
    torch.manual_seed(0)
    side = valid_side(netG)
    net = define_G(input_nc, output_nc, 4, netG, norm="batch", use_dropout=True)
    out = net(torch.randn(2, input_nc, side, side))
    assert out.shape == (2, output_nc, side, side)
    assert out.abs().max() <= 1.0  # tanh output


@pytest.mark.parametrize("netG", sorted(GENERATORS))
@pytest.mark.parametrize("norm", sorted(NORM_LAYERS))
def test_generator_builds_with_every_norm(netG: str, norm: str) -> None:
    side = valid_side(netG)
    net = define_G(3, 3, 2, netG, norm=norm).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, side, side)).shape == (1, 3, side, side)


@pytest.mark.parametrize("netD", sorted(DISCRIMINATORS))
@pytest.mark.parametrize("norm", sorted(NORM_LAYERS))
def test_discriminator_forward(netD: str, norm: str) -> None:
    net = define_D(4, 8, netD, n_layers_D=3, norm=norm)
    out = net(torch.randn(2, 4, 64, 64))
    # PatchGAN: three halvings, then two stride-1 4x4 convs each remove one pixel.
    expected = {"basic": 64 // 8 - 2, "n_layers": 64 // 8 - 2, "pixel": 64}[netD]
    assert out.shape == (2, 1, expected, expected)


def test_n_layers_discriminator_depth() -> None:
    for n_layers, side in [(1, 64 // 2 - 2), (2, 64 // 4 - 2), (4, 64 // 16 - 2)]:
        net = define_D(3, 8, "n_layers", n_layers_D=n_layers)
        assert net(torch.randn(1, 3, 64, 64)).shape == (1, 1, side, side)
    # "basic" is the 70x70 PatchGAN whatever n_layers_D says.
    basic = define_D(3, 8, "basic", n_layers_D=5)
    assert layout(basic) == layout(NLayerDiscriminator(3, 8, n_layers=3))


def test_size_multiples() -> None:
    assert {name: generator_size_multiple(name) for name in GENERATORS} == {
        "resnet_9blocks": 4, "resnet_6blocks": 4,
        **{f"unet_{2 ** k}": 2 ** k for k in range(3, 11)}}
    # unet_256 bottoms out at 1x1: a side of 256 works, 128 cannot pass 8 halvings.
    net = define_G(3, 3, 2, "unet_256").eval()
    assert net(torch.randn(1, 3, 256, 256)).shape == (1, 3, 256, 256)
    with pytest.raises(RuntimeError):
        net(torch.randn(1, 3, 128, 128))


def test_small_unets_halve_down_to_one_pixel() -> None:
    # unet_N has log2(N) halvings: N is the smallest side, N / 2 cannot pass them all.
    for side in (8, 16, 32, 64):
        net = define_G(5, 2, 2, f"unet_{side}", norm="batch").eval()
        downs = sum(isinstance(m, nn.Conv2d) for m in net.modules())
        assert downs == side.bit_length() - 1
        assert net(torch.randn(1, 5, side, side)).shape == (1, 2, side, side)
        with pytest.raises(RuntimeError):
            net(torch.randn(1, 5, side // 2, side // 2))


@pytest.mark.parametrize("call", [
    lambda: define_G(3, 3, 8, "resnet_7blocks"),
    lambda: define_D(3, 8, "patch"),
    lambda: get_norm_layer("layer"),
    lambda: define_G(3, 3, 8, "unet_128", init_type="uniform"),
    lambda: generator_size_multiple("resnet_3blocks"),
])
def test_unknown_names_list_choices(call) -> None:
    with pytest.raises(UserError, match="available: "):
        call()


def test_unknown_name_message_lists_all_choices() -> None:
    with pytest.raises(UserError) as info:
        define_G(3, 3, 8, "nope")
    assert all(name in str(info.value) for name in GENERATORS)


# ---------------------------------------------------------------- reference layouts
REFERENCE_NETS = {
    "pix2pix_netG_unet256": lambda: define_G(3, 3, 64, "unet_256", "batch", use_dropout=True),
    "pix2pix_netD_basic": lambda: define_D(6, 64, "basic", norm="batch"),
    "cyclegan_netG_A_resnet9": lambda: define_G(3, 3, 64, "resnet_9blocks", "instance", False),
    "cyclegan_netD_A_basic": lambda: define_D(3, 64, "basic", norm="instance"),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_NETS))
def test_state_dict_layout_equals_reference(name: str) -> None:
    expected = (KEYS_DIR / f"{name}.txt").read_text().strip().splitlines()
    assert layout(REFERENCE_NETS[name]()) == expected


@pytest.mark.parametrize("build,count,figure", [
    (lambda: UnetGenerator(3, 3, 8, 64, get_norm_layer("batch")), 54_413_955, 54.41),
    (lambda: ResnetGenerator(3, 3, 64, get_norm_layer("instance"), n_blocks=9),
     11_378_179, 11.38),
    (lambda: NLayerDiscriminator(3, 64, 3, get_norm_layer("batch")), 2_765_633, 2.77),
    (lambda: NLayerDiscriminator(6, 64, 3, get_norm_layer("batch")), 2_768_705, 2.77),
    (lambda: UnetGenerator(3, 3, 7, 64, get_norm_layer("batch")), 41_828_995, 41.83),
    (lambda: ResnetGenerator(3, 3, 64, get_norm_layer("instance"), n_blocks=6),
     7_837_699, 7.84),
])
def test_parameter_counts_match_reference(build, count: int, figure: float) -> None:
    net = build()
    assert n_params(net) == count
    assert round(count / 1e6, 2) == figure


def test_conv_bias_follows_reference_rule() -> None:
    # Bias only before InstanceNorm; BatchNorm's shift makes it redundant. The reference
    # also leaves it out for norm "none", and its checkpoints have that layout.
    for norm, has_bias in [("instance", True), ("batch", False), ("none", False)]:
        net = ResnetGenerator(3, 3, 8, get_norm_layer(norm), n_blocks=1)
        assert (net.model[1].bias is not None) == has_bias
        assert (net.model[4].bias is not None) == has_bias
        assert net.model[-2].bias is not None  # output conv: no norm follows


def test_dropout_positions_match_reference() -> None:
    unet = UnetGenerator(3, 3, 8, 4, get_norm_layer("batch"), use_dropout=True)
    n_dropout = sum(isinstance(m, nn.Dropout) for m in unet.modules())
    assert n_dropout == 3  # only the three extra 8*ngf levels of unet_256
    resnet = ResnetGenerator(3, 3, 4, get_norm_layer("instance"), use_dropout=True, n_blocks=2)
    assert [type(m) for m in resnet.model[10].conv_block][4] is nn.Dropout
    assert sum(isinstance(m, nn.Dropout) for m in resnet.modules()) == 2


def test_pixel_discriminator_layout() -> None:
    net = PixelDiscriminator(3, 64, get_norm_layer("batch"))
    assert [k for k in net.state_dict() if k.endswith("weight")] == [
        "net.0.weight", "net.2.weight", "net.3.weight", "net.5.weight"]


def test_norm_layers() -> None:
    batch = get_norm_layer("batch")(8)
    assert isinstance(batch, nn.BatchNorm2d) and batch.affine and batch.track_running_stats
    inst = get_norm_layer("instance")(8)
    assert isinstance(inst, nn.InstanceNorm2d)
    assert not inst.affine and not inst.track_running_stats
    assert isinstance(get_norm_layer("none")(8), nn.Identity)
    assert isinstance(get_norm_layer("syncbatch")(8), nn.SyncBatchNorm)


# ---------------------------------------------------------------- initialization
def _conv_weights(net: nn.Module) -> torch.Tensor:
    return torch.cat([m.weight.flatten() for m in net.modules()
                      if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])


@pytest.mark.parametrize("init_type", sorted(INIT_TYPES))
def test_init_types_set_weights_and_zero_biases(init_type: str) -> None:
    torch.manual_seed(0)
    net = NLayerDiscriminator(3, 16, 3, get_norm_layer("batch"))
    before = _conv_weights(net).clone()
    for m in net.modules():
        if isinstance(m, nn.Conv2d) and m.bias is not None:
            nn.init.constant_(m.bias, 1.0)
    init_weights(net, init_type, 0.02)
    after = _conv_weights(net)
    assert not torch.allclose(before, after)
    for m in net.modules():
        if isinstance(m, nn.Conv2d) and m.bias is not None:
            assert torch.all(m.bias == 0)
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.bias == 0)
            assert abs(m.weight.mean().item() - 1.0) < 0.01
            assert 0.01 < m.weight.std().item() < 0.03


def test_init_statistics() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(64, 128, 4)  # fan_in = 64 * 16 = 1024, fan_out = 128 * 16 = 2048
    expected_std = {
        "normal": 0.02,
        "xavier": 0.02 * (2.0 / (1024 + 2048)) ** 0.5,
        "kaiming": (2.0 / 1024) ** 0.5,
    }
    for init_type, std in expected_std.items():
        init_weights(conv, init_type, 0.02)
        assert abs(conv.weight.mean().item()) < 0.1 * std
        assert conv.weight.std().item() == pytest.approx(std, rel=0.03)
    init_weights(conv, "orthogonal", 0.02)
    rows = conv.weight.reshape(128, -1)
    assert torch.allclose(rows @ rows.T, 0.02 ** 2 * torch.eye(128), atol=1e-6)


# ---------------------------------------------------------------- loading weights
def _tiny_resnet() -> ResnetGenerator:
    return ResnetGenerator(3, 3, 4, get_norm_layer("instance"), n_blocks=1)


def test_load_wrapped_and_old_instance_norm_weights() -> None:
    torch.manual_seed(0)
    source, target = _tiny_resnet(), _tiny_resnet()
    old = OrderedDict()
    for key, value in source.state_dict().items():
        old[f"module.{key}"] = value
    # What PyTorch < 0.4 saved for every InstanceNorm layer.
    for prefix in ["model.2", "model.10.conv_block.2", "model.15"]:
        old[f"module.{prefix}.running_mean"] = torch.zeros(4)
        old[f"module.{prefix}.running_var"] = torch.ones(4)
        old[f"module.{prefix}.num_batches_tracked"] = torch.tensor(0)
    load_network_weights(target, old)
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(source(x), target(x))


def test_clean_state_dict_prefixes_without_net() -> None:
    sd = OrderedDict([("_orig_mod.module.model.1.weight", torch.ones(1)),
                      ("module.model.2.running_mean", torch.zeros(1)),
                      ("model.3.bias", torch.zeros(1))])
    assert list(clean_state_dict(sd)) == ["model.1.weight", "model.2.running_mean",
                                          "model.3.bias"]


def test_batch_norm_stats_are_not_dropped() -> None:
    net = NLayerDiscriminator(3, 8, 3, get_norm_layer("batch"))
    sd = net.state_dict()
    assert list(clean_state_dict(sd, net)) == list(sd)


def test_mismatched_weights_still_raise() -> None:
    target = _tiny_resnet()
    wrong_shape = ResnetGenerator(3, 3, 8, get_norm_layer("instance"), n_blocks=1).state_dict()
    with pytest.raises(RuntimeError):
        load_network_weights(target, wrong_shape)
    missing = _tiny_resnet().state_dict()
    missing.pop("model.1.weight")
    with pytest.raises(RuntimeError):
        load_network_weights(target, missing)
    extra = _tiny_resnet().state_dict()
    extra["model.1.running_mean"] = torch.zeros(4)  # a conv, not an InstanceNorm
    with pytest.raises(RuntimeError):
        load_network_weights(target, extra)


def test_batch_norm_weights_from_before_num_batches_tracked_load() -> None:
    source = NLayerDiscriminator(3, 8, 3, get_norm_layer("batch"))
    target = NLayerDiscriminator(3, 8, 3, get_norm_layer("batch"))
    old = OrderedDict((k, v) for k, v in source.state_dict().items()
                      if not k.endswith("num_batches_tracked"))
    load_network_weights(target, old)
    assert torch.equal(target.model[3].running_var, source.model[3].running_var)


def test_per_image_batch_norm_gives_each_image_its_batch_of_one_result():
    from models.networks import define_G, per_image_batch_norm

    torch.manual_seed(0)
    net = define_G(3, 3, 8, "unet_128", norm="batch", use_dropout=False)
    x = torch.randn(3, 3, 128, 128)
    with torch.no_grad():
        alone = torch.cat([net(x[i:i + 1]) for i in range(3)])
        mixed = net(x)
        keys = list(net.state_dict())
        per_image_batch_norm(net)
        assert list(net.state_dict()) == keys  # the reference's layout is kept
        batched = net(x)
        net.eval()
        torch.testing.assert_close(net(x[:1]), net(x)[:1], rtol=0, atol=1e-6)  # eval mode: running statistics
    assert (mixed - alone).abs().max() > 1e-3  # plain batch norm couples the images
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-5)
