"""No option is silently ignored: for every registered model (new plugins included, from the
registry) and every shared option that shapes the networks, the optimizers or the losses,
a value other than the default either changes what the model builds or is refused with
one error line that names the option and the model.

"What the model builds" is a fingerprint taken right after ``create_model`` with a fixed
seed: each network's structure (its ``repr``) and initial tensors, each optimizer's
parameter groups (rates, betas, sizes), and the plain settings of the model's other parts
(its losses, image pools). Building takes no data, so every model and option is checked
in a few seconds.
"""

from __future__ import annotations

import argparse

import pytest
import torch

from models import MODELS, create_model
from options import parse_options
from options.base_options import build_parser
from tests.helpers import TINY, TINY_BY_MODEL, TINY_TRAIN_BY_MODEL, WITHOUT_D
from util.errors import UserError

# The options checked, with the value to try (None: the first choice other than the current
# value, or the flag turned on). A dropout flag needs a network that has dropout layers.
AUDITED = {"input_nc": None, "output_nc": None, "ngf": "6", "ndf": "6", "netD": "pixel", "n_layers_D": "2",
           "norm": None, "normG": None, "normD": None, "no_dropout": None, "init_type": None, "init_gain": "0.05",
           "spectral_norm_G": None, "spectral_norm_D": None, "upsample": None, "attention": None, "num_D": "2",
           "lr": "0.001", "lr_D": "0.001", "beta1": "0.9", "beta2": "0.99", "gan_mode": None, "lambda_gp": "5",
           "pool_size": "3", "ema_rampup": "0.1", "grad_accum_mode": "exact"}
# Settings under which every audited option can have an effect: networks with dropout and
# U-Net skips (attention gates), a discriminator of variable depth.
RICH = {"netD": "n_layers", "n_layers_D": "3"}
RICH_BY_MODEL = {"pix2pix3d": ["--netG", "unet_64", "--patch_size", "64"], "cut": [], "cycle_gan": [],
                 "template": ["--netG", "unet_128"], "pix2pix": [], "colorization": [],
                 "stargan_v2": ["--domains", "A,B"]}  # no data folder to read them from
TRAINABLE = [name for name in MODELS.names() if name != "test"]  # --model test only tests


def base_args(model: str) -> list:
    tiny = TINY if model not in WITHOUT_D else TINY[:2] + TINY[4:]
    refused = getattr(MODELS.get(model), "unused_options", {})  # StarGAN v2: its own D, no --netD
    rich = [] if model in WITHOUT_D else [x for k, v in RICH.items() if k not in refused for x in (f"--{k}", v)]
    return ["--dataroot", "unused", "--model", model, *tiny, *TINY_BY_MODEL.get(model, []),
            *TINY_TRAIN_BY_MODEL.get(model, []), *rich, *RICH_BY_MODEL.get(model, [])]


def other_value(parser: argparse.ArgumentParser, opt: argparse.Namespace, key: str, given) -> list:
    """Flags that set ``key`` to a value other than its current one ([] when none can)."""
    action = next(a for a in parser._actions if a.dest == key)
    current = getattr(opt, key)
    if isinstance(action, argparse._StoreTrueAction):
        return [] if current else [f"--{key}"]
    if given is not None:
        return [] if str(current) == given else [f"--{key}", given]
    if key in ("input_nc", "output_nc"):
        return [f"--{key}", "1" if current != 1 else "3"]
    choices = action.choices or []
    return next(([f"--{key}", c] for c in choices if c != current and c != "syncbatch"), [])


def fingerprint(argv: list):
    torch.manual_seed(0)
    opt = parse_options(argv, is_train=True)
    model = create_model(opt)
    model.setup(opt)  # the weight average (--ema_decay, --ema_rampup) is made here
    nets = [(name, repr(net), [(k, v.clone()) for k, v in net.state_dict().items()])
            for name, net in model.networks().items()]
    optimizers = [[(g["lr"], g.get("betas"), sum(p.numel() for p in g["params"])) for g in o.param_groups]
                  for o in model.optimizers]
    parts = sorted((name, sorted((k, v) for k, v in vars(part).items() if isinstance(v, (int, float, str, bool))))
                   for name, part in vars(model).items()
                   if name not in ("opt",) and not name.startswith("net") and hasattr(part, "__dict__")
                   and not isinstance(part, (torch.Tensor, torch.optim.Optimizer, type)))
    return nets, optimizers, parts


def same(a, b) -> bool:
    (nets_a, opt_a, parts_a), (nets_b, opt_b, parts_b) = a, b
    if opt_a != opt_b or repr(parts_a) != repr(parts_b) or len(nets_a) != len(nets_b):
        return False
    for (name_a, repr_a, state_a), (name_b, repr_b, state_b) in zip(nets_a, nets_b):
        if name_a != name_b or repr_a != repr_b or [k for k, _ in state_a] != [k for k, _ in state_b]:
            return False
        if any(x.shape != y.shape or not torch.equal(x, y) for (_, x), (_, y) in zip(state_a, state_b)):
            return False
    return True


@pytest.mark.parametrize("model", TRAINABLE)
def test_every_shared_option_is_read_or_refused(model, capsys):
    argv = base_args(model)
    reference = fingerprint(argv)
    parser = build_parser(True, argv)
    opt = parse_options(argv, is_train=True)
    ignored, checked = [], 0
    for key, given in AUDITED.items():
        flags = other_value(parser, opt, key, given)
        if not flags:
            continue
        checked += 1
        try:
            changed = fingerprint([*argv, *flags])
        except UserError as e:  # refused: the message names the option (and the model where it is the model's)
            assert f"--{key}" in str(e) and "\n" not in str(e), str(e)
            continue
        if same(reference, changed):
            ignored.append(" ".join(flags))
    assert checked >= 15
    assert not ignored, f"--model {model} accepts and ignores: {', '.join(ignored)}"


@pytest.mark.parametrize("model, flags", [
    ("cut", ["--spectral_norm_G"]), ("cut", ["--upsample", "bilinear"]), ("cut", ["--attention", "up"]),
    ("pix2pix3d", ["--spectral_norm_G"]), ("pix2pix3d", ["--spectral_norm_D"]),
    ("pix2pix3d", ["--upsample", "bilinear"]), ("pix2pix3d", ["--attention", "up"]),
    ("cycle_gan", ["--num_D", "2"]), ("pix2pix", ["--pool_size", "50"]), ("template", ["--ndf", "32"]),
])
def test_options_a_model_does_not_read_are_one_error_line(model, flags, tmp_path, capsys):
    import train

    args = [*base_args(model), *flags, "--checkpoints_dir", str(tmp_path)]
    args[args.index("unused")] = str(tmp_path)
    assert train.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {flags[0]} is not used by --model {model}: ") and "\n" not in err
    assert not list(tmp_path.iterdir())  # refused before any work


@pytest.mark.parametrize("flags, message", [
    (["--n_layers_D", "5"], "--n_layers_D 5 is not used with --netD basic"),
    (["--lambda_gp", "1"], "--lambda_gp 1.0 is not used with --gan_mode lsgan"),
    (["--compile_backend", "eager"], "--compile_backend eager is not used with --compile False"),
])
def test_options_a_network_or_mode_does_not_read_are_refused(flags, message, capsys):
    with pytest.raises(UserError, match=message):
        parse_options(["--dataroot", "unused", "--model", "cycle_gan", *flags])
