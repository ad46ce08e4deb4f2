"""Flags shared by training and testing, and the parsing entry point."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

from options.test_options import add_test_options
from options.train_options import add_train_options
from util.errors import UserError
from util.hardware import AMP_CHOICES
from util.saved_options import load_saved_options

# Flags of older reference versions that scripts still pass, mapped to today's names.
ALIASES = {"--niter": "--n_epochs", "--niter_decay": "--n_epochs_decay", "--how_many": "--num_test"}


def add_base_options(parser: argparse.ArgumentParser) -> None:
    from data import DATASETS
    from data.base_dataset import PREPROCESS_MODES
    from models import MODELS
    from models.networks import (
        ATTENTION_MODES,
        DISCRIMINATORS,
        GENERATORS,
        INIT_TYPES,
        NORM_LAYERS,
        SPECTRAL_NORM_PLACEMENTS,
        UPSAMPLE_MODES,
    )

    g = parser.add_argument_group("experiment")
    g.add_argument("--dataroot", default=None, help="path to images (trainA/trainB, train/, ...)")
    g.add_argument("--name", default="experiment_name", help="experiment name: where samples and models are stored")
    g.add_argument("--checkpoints_dir", default="./checkpoints", help="models are saved here")
    g.add_argument("--gpu_ids", default=None,
                   help="GPUs to use, e.g. 0 or 0,1; -1 for CPU (default: the first GPU if there is one)")
    g.add_argument("--seed", type=int, default=None, help="random seed; runs are reproducible on CPU with it")
    g.add_argument("--verbose", action="store_true", help="print more information, and tracebacks of errors")
    g.add_argument("--suffix", default="", help="customized suffix: opt.name = opt.name + suffix, e.g. {model}_{netG}_size{load_size}")

    g = parser.add_argument_group("model")
    g.add_argument("--model", default="cycle_gan",
                   help=f"model to use: {', '.join(MODELS.names())}, or a dotted path package.module.Class")
    g.add_argument("--input_nc", type=int, default=3, help="# of input image channels: 3 for RGB, 1 for grayscale")
    g.add_argument("--output_nc", type=int, default=3, help="# of output image channels: 3 for RGB, 1 for grayscale")
    g.add_argument("--ngf", type=int, default=64, help="# of gen filters in the last conv layer")
    g.add_argument("--ndf", type=int, default=64, help="# of discrim filters in the first conv layer")
    # Not argparse choices: a dotted path package.module.Class selects a network outside the tree.
    g.add_argument("--netD", default="basic",
                   help=f"discriminator: {', '.join(DISCRIMINATORS.names())}, or a dotted path package.module.Class")
    g.add_argument("--netG", default="resnet_9blocks",
                   help=f"generator: {', '.join(GENERATORS.names())}, or a dotted path package.module.Class")
    g.add_argument("--n_layers_D", type=int, default=3, help="only used if netD==n_layers")
    g.add_argument("--norm", default="instance", choices=NORM_LAYERS.names(), help="normalization layer")
    g.add_argument("--normG", default=None, choices=NORM_LAYERS.names(),
                   help="normalization layer of the generator(s) (default: --norm)")
    g.add_argument("--normD", default=None, choices=NORM_LAYERS.names(),
                   help="normalization layer of the discriminator(s) (default: --norm)")
    g.add_argument("--spectral_norm_G", action="store_true",
                   help="spectral normalization of every generator convolution (Miyato et al. 2018); the "
                        "weight files then hold each conv's weight as parametrizations.weight.original (+ _u, _v)")
    g.add_argument("--upsample", default="convtranspose", choices=UPSAMPLE_MODES,
                   help="the generator's 2x upsampling: a 4x4 (U-Net) or 3x3 (ResNet) transposed conv as in the "
                        "reference, or a nearest/bilinear resize followed by a 3x3 conv (no checkerboard artifacts)")
    g.add_argument("--attention", default="none", choices=ATTENTION_MODES,
                   help="U-Net attention: up = additive attention gates on the skip connections in the decoder, "
                        "a same-resolution variant of Oktay et al. 2018 (gated by the decoder feature at the skip's "
                        "resolution, not the coarser level), down = spatial attention after each encoder block, "
                        "both, or none")
    g.add_argument("--num_D", type=int, default=1,
                   help="pix2pix: this many discriminators, the k-th on the input downsampled k times (pix2pixHD)")
    g.add_argument("--spectral_norm_D", nargs="?", const="sngan", default="none", choices=SPECTRAL_NORM_PLACEMENTS.names(),
                   help="spectral normalization of the discriminator's convolutions: sngan (also the bare flag) = "
                        "every one (Miyato et al. 2018), spade = all but the first and the last (SPADE), none")
    g.add_argument("--init_type", default="normal", choices=INIT_TYPES.names(), help="network initialization")
    g.add_argument("--init_gain", type=float, default=0.02, help="scaling factor for normal, xavier and orthogonal")
    g.add_argument("--no_dropout", action="store_true", help="no dropout for the generator")

    g = parser.add_argument_group("data")
    g.add_argument("--dataset_mode", default="unaligned",
                   help=f"how to load the dataset: {', '.join(DATASETS.names())}")
    g.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="AtoB or BtoA")
    g.add_argument("--serial_batches", action="store_true", help="take images in order, not randomly")
    g.add_argument("--num_threads", default=4, type=int, help="# threads (workers) for loading data")
    g.add_argument("--batch_size", type=int, default=1, help="input batch size")
    g.add_argument("--load_size", type=int, default=286, help="scale images to this size")
    g.add_argument("--crop_size", type=int, default=256, help="then crop to this size")
    g.add_argument("--max_dataset_size", type=float, default=float("inf"),
                   help="maximum number of samples allowed per dataset")
    g.add_argument("--preprocess", default="resize_and_crop",
                   choices=list(PREPROCESS_MODES),
                   help="scaling and cropping of images at load time")
    g.add_argument("--no_flip", action="store_true", help="do not flip the images for data augmentation")

    g = parser.add_argument_group("display")
    g.add_argument("--display_winsize", type=int, default=256, help="display window size for visdom and HTML")
    g.add_argument("--display_id", type=int, default=0, help="visdom window id; > 0 turns the visdom display on")
    g.add_argument("--display_server", default="http://localhost", help="visdom server")
    g.add_argument("--display_env", default="main", help="visdom display environment name")
    g.add_argument("--display_port", type=int, default=8097, help="visdom port")
    g.add_argument("--display_ncols", type=int, default=4, help="images per row in the visdom grid")
    g.add_argument("--use_wandb", action="store_true", help="log to Weights & Biases")
    g.add_argument("--wandb_project_name", default="CycleGAN-and-pix2pix", help="W&B project name")
    g.add_argument("--use_tensorboard", action="store_true", help="log to TensorBoard (checkpoints/<name>/tensorboard)")

    g = parser.add_argument_group("speed")
    g.add_argument("--amp", default="none", choices=AMP_CHOICES,
                   help="mixed precision. auto: the fastest that keeps quality on this device (bf16 on CPUs "
                        "with AVX512_BF16/AMX and on Ampere+ GPUs, fp16 with loss scaling on older GPUs, "
                        "else fp32). bf16: CPUs with AVX512_BF16/AMX, Ampere+ GPUs (elsewhere emulated, many "
                        "times slower; a warning says so). fp16: GPUs, with loss scaling")
    g.add_argument("--channels_last", action="store_true", help="channels-last memory format for images and networks")
    g.add_argument("--compile", action="store_true", help="torch.compile the networks (slow first steps)")
    g.add_argument("--compile_backend", default="inductor",
                   help="torch.compile's backend with --compile: inductor (generated kernels, the fast one), or "
                        "one of torch._dynamo.list_backends(); eager and aot_eager trace the graphs without "
                        "generating code (to tell a tracing problem from a code-generation one, in seconds)")
    g.add_argument("--conv_impl", default="auto", choices=["auto", "native"],
                   help="auto: on the CPU, convolutions over few pixels (the U-Net's inner layers) run as one "
                        "matrix multiply, which is faster there; the same function up to floating-point rounding. "
                        "native: always torch's (with --adam_impl for_loop, the reference's step bit for bit)")
    g.add_argument("--cache_images", action="store_true",
                   help="decode and resize every image once, at start, and keep it in memory: a sample is then "
                        "only its random crop and flip, the same sample as without the cache (small datasets; "
                        "8-bit images cost channels x load_size^2 bytes each, e.g. 50 MB for 400 maps pairs "
                        "at load_size 143, 0.2 GB at 286; 16-bit images 4 times that)")

    g = parser.add_argument_group("loading")
    g.add_argument("--epoch", default="latest", help="which epoch to load: latest, best, or a number")
    g.add_argument("--load_iter", type=int, default=0,
                   help="which iteration to load; if > 0, load iter_[load_iter], else [epoch]")

    g = parser.add_argument_group("evaluation")
    g.add_argument("--metrics_weights", default=None,
                   help="folder with the pretrained weights of lpips/fid/kid (also: env PIX2CYCLE_METRICS_WEIGHTS; "
                        "see docs/metrics.md)")
    g.add_argument("--download_weights", action="store_true",
                   help="download the lpips/fid/kid weights that are not found (one line per file, into the torch "
                        "hub cache); without it, those metrics are skipped with one line saying why")


def _rewrite_aliases(argv: Sequence[str]) -> list:
    out = []
    for arg in argv:
        flag, sep, value = arg.partition("=")
        out.append(ALIASES.get(flag, flag) + sep + value if flag in ALIASES else arg)
    return out


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit code 2, like argparse's own."""

    def error(self, message: str) -> None:  # noqa: D401
        raise UserError(message)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """One default per flag: the value, appended, unless the help states its own default
    (``(default: ...)``) or there is no value to show (None, a switch, empty)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or action.default is None or action.default is False or action.default == "" \
                or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


def _help_intro(is_train: bool, model: str, dataset_mode: str) -> Tuple[str, str]:
    """The usage line and the first lines of ``--help``: which plugins' flags are shown, and how
    to see another's (the same way for train.py and test.py)."""
    from data import DATASETS
    from models import MODELS

    script = "train.py" if is_train else "test.py"
    usage = f"{script} --dataroot DIR [--name NAME] [--model MODEL] [--dataset_mode MODE] [flags]"
    description = (f"pix2cycle {'training' if is_train else 'testing'}. Shown: every common flag, and the flags "
                   f"and defaults of --model {model} and --dataset_mode {dataset_mode} (in their own groups at "
                   f"the end). Another model's or dataset mode's: python {script} --model MODEL [--dataset_mode "
                   f"MODE] --help. Models: {', '.join(MODELS.names())}; dataset modes: "
                   f"{', '.join(DATASETS.names())}.")
    return usage, description


def _in_own_group(parser: argparse.ArgumentParser, title: str, add_flags: Callable[[], object]) -> None:
    """Run a plugin's ``modify_commandline_options`` and show the flags it adds under ``title``."""
    before = set(map(id, parser._actions))
    add_flags()
    added = [a for a in parser._actions if id(a) not in before]
    if not added:
        return
    for group in parser._action_groups:  # where the plugin put them: the parser's, or a group of its own
        group._group_actions[:] = [a for a in group._group_actions if id(a) not in set(map(id, added))]
    parser.add_argument_group(title)._group_actions.extend(added)


def build_parser(is_train: bool, argv: Sequence[str]) -> argparse.ArgumentParser:
    """The full parser for ``argv``: base + train/test + the model's and dataset's flags."""
    from data import DATASETS
    from models import MODELS

    parser = _Parser(formatter_class=_HelpFormatter, add_help=False)
    add_base_options(parser)
    (add_train_options if is_train else add_test_options)(parser)
    # The model's and dataset's hooks need their names first, so parse leniently for them.
    lenient = [a for a in argv if a not in ("-h", "--help")]
    known, _ = parser.parse_known_args(lenient)
    model = MODELS.get(known.model)
    _in_own_group(parser, f"flags of --model {known.model}", lambda: model.modify_commandline_options(parser, is_train))
    known, _ = parser.parse_known_args(lenient)
    # Defaults that depend on one of the model's own flags (CUT's --CUT_mode).
    mode_defaults = getattr(model, "mode_defaults", None)
    if mode_defaults is not None:
        mode_defaults(parser, known, is_train)
        known, _ = parser.parse_known_args(lenient)
    _in_own_group(parser, f"flags of --dataset_mode {known.dataset_mode}",
                  lambda: DATASETS.get(known.dataset_mode).modify_commandline_options(parser, is_train))
    parser.usage, parser.description = _help_intro(is_train, known.model, known.dataset_mode)
    parser.add_argument("-h", "--help", action="help", help="show this help message and exit")
    return parser


def parse_options(argv: Optional[Sequence[str]] = None, is_train: bool = True,
                  trust_remote_code: bool = False) -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``) into the resolved options.

    For testing, architecture options saved by the training run (``train_opt.json`` in the
    experiment folder) fill in whatever the command line does not set, so that
    ``test.py --dataroot D --name N --model pix2pix`` rebuilds the trained networks. A
    plugin outside the tree that the saved run names (a dotted path) is imported only when
    the command line names it again, or with ``trust_remote_code`` (``--trust_remote_code``).
    """
    argv = _rewrite_aliases(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(is_train, argv)
    opt = parser.parse_args(argv)
    if opt.dataroot is None:
        parser.error("the following argument is required: --dataroot (the folder holding the images)")
    opt.isTrain = is_train
    given = _given_on_command_line(parser, argv)
    if not is_train:
        _apply_saved_architecture(opt, parser, given, trust_remote_code or opt.trust_remote_code)
    refuse_unused_options(opt, parser, given)
    return finalize(opt)


# Options that only some choices of another option read: (option, the values that read it, why).
READ_ONLY_WITH = (
    ("n_layers_D", "netD", lambda netD: netD == "n_layers" or "." in netD,
     "--n_layers_D sets the depth of --netD n_layers (basic is the 3-layer PatchGAN, pixel the 1x1 one)"),
    ("lambda_gp", "gan_mode", lambda mode: mode == "wgangp", "--lambda_gp weights the gradient penalty of "
     "--gan_mode wgangp"),
    ("feat_weighting", "lambda_feat", lambda w: w > 0, "--feat_weighting weights the terms of --lambda_feat "
     "(feature matching): give --lambda_feat W"),
    ("perceptual_form", ("lambda_perceptual", "lambda_style"), lambda p, s: p > 0 or s > 0,
     "--perceptual_form chooses the VGG losses of --lambda_perceptual / --lambda_style: give one of them"),
    ("vgg_weights", ("lambda_perceptual", "lambda_style"), lambda p, s: p > 0 or s > 0,
     "--vgg_weights are the VGG of --lambda_perceptual / --lambda_style: give one of them"),
    ("ema_rampup", "ema_decay", lambda d: d > 0, "--ema_rampup ramps up the weight average of --ema_decay"),
    ("decay_jitter", "n_epochs_decay", lambda n: n > 0, "--decay_jitter keeps the crops of the --n_epochs_decay "
     "epochs (CUT's fine-tuning phase)"),
    ("grad_accum_mode", "grad_accum_steps", lambda k: k > 1, "--grad_accum_mode orders the batches of "
     "--grad_accum_steps K (K > 1)"),
    ("compile_backend", "compile", bool, "--compile_backend chooses torch.compile's backend: give --compile"),
    ("init_gain", ("init_type", "model"),
     lambda init, model: init != "kaiming" or getattr(_model_class(model), "has_batch_norm", True),
     "--init_gain is the spread of --init_type normal, xavier and orthogonal, and of batch norm weights "
     "(He initialization has no gain, and this model has no batch norm)"),
    ("n_samples", "model", lambda model: getattr(_model_class(model), "samples_per_input", False),
     "--n_samples is read by the models with many outputs per input (bicycle_gan, stargan_v2)"),
)


def _model_class(model: str):
    from models import MODELS

    return MODELS.get(model)


# What test.py never reads: it builds and loads generators only. Given as the run was trained
# (a training command reused for testing, as the reference allows) they are accepted.
TEST_UNUSED = dict.fromkeys(("netD", "ndf", "n_layers_D", "normD", "spectral_norm_D", "num_D"),
                            "testing builds the generators only (the discriminator options are training's)")


def unused_option_reason(model: str, dataset_mode: str, key: str) -> Optional[str]:
    """Why ``--key`` is not read by the model or the dataset mode (their ``unused_options``),
    as the error line says it; None when both read it. pix2cycle/compatibility.py asks too."""
    from data import DATASETS
    from models import MODELS

    for what, table in ((f"--model {model}", MODELS.get(model)), (f"--dataset_mode {dataset_mode}",
                                                                   DATASETS.get(dataset_mode))):
        reason = getattr(table, "unused_options", {}).get(key)
        if reason is not None:
            return f"--{key} is not used by {what}: {reason}"
    return None


def refuse_unused_options(opt: argparse.Namespace, parser: argparse.ArgumentParser, given: set) -> None:
    """An option that the chosen model (its ``unused_options``) or the chosen network does not
    read, given at a value other than its default, is one error line: never silently ignored."""

    def changed(key: str) -> bool:
        return key in given and getattr(opt, key) != parser.get_default(key)

    for key in sorted(given):  # the same first error whatever the order of the flags
        reason = unused_option_reason(opt.model, opt.dataset_mode, key) if changed(key) else None
        if reason is not None:
            raise UserError(reason)
    for key, others, reads, reason in READ_ONLY_WITH:
        others = (others,) if isinstance(others, str) else others
        if changed(key) and all(hasattr(opt, o) for o in others) and not reads(*(getattr(opt, o) for o in others)):
            with_ = " and ".join(f"--{o} {getattr(opt, o)}" for o in others)
            raise UserError(f"--{key} {getattr(opt, key)} is not used with {with_}: {reason}")


def _given_on_command_line(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set:
    given = set()
    flags = {a.split("=")[0] for a in argv if a.startswith("-")}
    for action in parser._actions:
        if any(s in flags for s in action.option_strings):
            given.add(action.dest)
    return given


def _architecture_keys(opt: argparse.Namespace, saved_model: Optional[str]) -> list:
    """The saved options test.py takes over: those that define the networks of this model and
    of the saved run's (each plugin declares its ``architecture_keys``), and those the dataset
    mode needs to read data as in training (e.g. the intensity windows)."""
    from data import DATASETS
    from models import MODELS

    tables = [MODELS.get(opt.model), DATASETS.get(opt.dataset_mode)]
    if saved_model in MODELS or (saved_model and "." in saved_model):
        tables.append(MODELS.get(saved_model))
    keys: list = []
    for table in tables:
        keys += [k for k in getattr(table, "architecture_keys", ()) if k not in keys]
    return keys


# Options whose default is another option's value: given that one, they are not taken from the saved run.
FOLLOWS = {"normG": "norm", "normD": "norm"}


def is_outside_plugin(value: object) -> bool:
    """Whether a saved choice is a dotted path (code outside the tree), not a registered name."""
    from data import DATASETS
    from models import MODELS
    from models.networks import DISCRIMINATORS, GENERATORS

    return isinstance(value, str) and "." in value and not any(
        value in table for table in (MODELS, GENERATORS, DISCRIMINATORS, DATASETS))


def refuse_saved_plugins(saved: dict, folder: Path, opt: argparse.Namespace, given: set, trusted: bool) -> dict:
    """``saved`` without code from the folder: a saved run that names a plugin by dotted path
    (``--model``, ``--netG``) is refused unless the command line names the same plugin or the
    caller trusts it; a saved ``--netD`` plugin, which testing never builds, is dropped."""
    if trusted or not _saved_run_applies(saved, opt):
        return saved
    saved = dict(saved)
    if is_outside_plugin(saved.get("netD")) and not ("netD" in given and opt.netD == saved["netD"]):
        del saved["netD"]
    for key in ("model", "netG"):
        value = saved.get(key)
        if is_outside_plugin(value) and not (key in given and getattr(opt, key) == value):
            raise UserError(f"{folder / 'train_opt.json'} asks for the plugin --{key} {value}, code from outside "
                            f"pix2cycle that a saved run may not import on its own: name it again "
                            f"(--{key} {value}) or give --trust_remote_code (trust_remote_code=True in the "
                            f"Python API) if you trust that code")
    return saved


def _saved_run_applies(saved: dict, opt: argparse.Namespace) -> bool:
    """Another model's run (say pix2pix weights tested as cycle_gan) shares nothing with this
    one; a plugin that declares ``reads_any_run`` (--model test) reads a generator of any run."""
    from models import reads_any_run

    return saved.get("model") in (opt.model, None) or reads_any_run(opt.model)


def _apply_saved_architecture(opt: argparse.Namespace, parser, given: set, trusted: bool = False) -> None:
    from models import reads_any_run

    folder = Path(opt.checkpoints_dir) / opt.name
    saved = load_saved_options(folder)
    if saved is not None:
        saved = refuse_saved_plugins(saved, folder, opt, given, trusted)
    if saved is not None and _saved_run_applies(saved, opt):
        for key, reason in TEST_UNUSED.items():
            if key in given and key in saved and getattr(opt, key) != saved[key] and getattr(opt, key) is not None:
                raise UserError(f"--{key} {getattr(opt, key)} is not used by test.py ({reason}), and the run was "
                                f"trained with --{key} {saved[key]}: drop it")
        for key in _architecture_keys(opt, saved.get("model")):
            if FOLLOWS.get(key) in given:  # --norm on the command line: --normG/--normD follow it
                continue
            # --model test takes the saved model's own architecture options too (CUT's anti-aliasing).
            if key in saved and key not in given and (hasattr(opt, key) or reads_any_run(opt.model)):
                setattr(opt, key, saved[key])
        # Test at the size the networks were trained at, unless told otherwise.
        if "crop_size" in saved and "crop_size" not in given:
            opt.crop_size = saved["crop_size"]
    # Test images are scaled to crop_size and not cropped further (the reference's intent).
    if "load_size" not in given:
        opt.load_size = opt.crop_size


# Integer options and their smallest valid value; checked when the parser has the option.
AT_LEAST = {"batch_size": 1, "input_nc": 1, "output_nc": 1, "ngf": 1, "ndf": 1, "n_layers_D": 1,
            "num_threads": 0, "display_winsize": 1, "n_epochs": 0, "n_epochs_decay": 0, "pool_size": 0,
            "lr_decay_iters": 1, "print_freq": 1, "display_freq": 1, "update_html_freq": 1,
            "save_latest_freq": 1, "save_epoch_freq": 1, "num_test": 1, "grad_accum_steps": 1, "num_D": 1,
            "lr_warmup_iters": 0}


def _check_ranges(opt: argparse.Namespace) -> None:
    if opt.compile_backend != "inductor":
        import torch._dynamo

        if opt.compile_backend not in torch._dynamo.list_backends(exclude_tags=()):
            raise UserError(f"--compile_backend {opt.compile_backend} is not a torch.compile backend; available: "
                            f"{', '.join(torch._dynamo.list_backends(exclude_tags=()))}")
    for key, low in AT_LEAST.items():
        value = getattr(opt, key, None)
        if value is not None and value < low:
            raise UserError(f"--{key} must be at least {low}, not {value}")
    if hasattr(opt, "lr") and not opt.lr > 0:
        raise UserError(f"--lr must be positive, not {opt.lr}")
    if hasattr(opt, "ema_rampup") and opt.ema_rampup < 0:
        raise UserError(f"--ema_rampup must be at least 0, not {opt.ema_rampup}")
    for key in ("beta1", "beta2", "ema_decay"):
        if hasattr(opt, key) and not 0 <= getattr(opt, key) < 1:
            raise UserError(f"--{key} must be in [0, 1), not {getattr(opt, key)}")
    if hasattr(opt, "lr_D") and opt.lr_D is not None and not opt.lr_D > 0:
        raise UserError(f"--lr_D must be positive, not {opt.lr_D}")
    if hasattr(opt, "aspect_ratio") and not opt.aspect_ratio > 0:
        raise UserError(f"--aspect_ratio must be positive, not {opt.aspect_ratio}")
    if opt.isTrain and opt.n_epochs + opt.n_epochs_decay < 1:
        raise UserError("nothing to train: --n_epochs + --n_epochs_decay must be at least 1")
    if opt.isTrain and opt.lr_policy == "plateau" and opt.val_freq <= 0:
        raise UserError("--lr_policy plateau lowers the rate when a validation figure stops improving; "
                        "turn validation on with --val_freq N (see --best_metric)")


def _apply_suffix(opt: argparse.Namespace) -> None:
    try:
        opt.name = opt.name + "_" + opt.suffix.format(**vars(opt))
    except (KeyError, IndexError, ValueError, AttributeError) as e:
        raise UserError(f"--suffix '{opt.suffix}' is not a valid template ({type(e).__name__}: {e}); "
                        f"use option names in braces, e.g. {{model}}_{{netG}}_size{{load_size}}") from None


def finalize(opt: argparse.Namespace) -> argparse.Namespace:
    """Derived values and checks that do not touch the file system."""
    from models import MODELS
    from models.networks import (
        DISCRIMINATORS,
        GENERATORS,
        discriminator_min_size,
        generator_min_size,
        generator_size_multiple,
    )

    if opt.suffix:
        _apply_suffix(opt)
    # Separate norms default to --norm (after test.py took the saved run's architecture).
    opt.normG = opt.normG or opt.norm
    opt.normD = opt.normD or opt.norm
    # The name becomes one folder under --checkpoints_dir and --results_dir, never a path.
    if not opt.name or opt.name == "." or ".." in opt.name or any(c in opt.name for c in ("/", "\\", os.sep)):
        raise UserError(f"--name '{opt.name}' must be a plain folder name (no '/', '\\\\' or '..')")
    _check_ranges(opt)
    for flag, table in (("netG", GENERATORS), ("netD", DISCRIMINATORS)):
        try:
            table.get(getattr(opt, flag))
        except UserError as e:
            raise UserError(f"--{flag}: {e}") from None
    opt.gpu_ids = _parse_gpu_ids(opt.gpu_ids)
    opt.size_multiple = generator_size_multiple(opt.netG)
    # The smallest image side the networks accept (the discriminator only matters in training).
    opt.min_input_size = max(generator_min_size(opt.netG),
                             discriminator_min_size(opt.netD, opt.n_layers_D) if opt.isTrain else 1)
    # A model with a generator of its own (not --netG) says what sizes it takes.
    own_sizes = getattr(MODELS.get(opt.model), "input_sizes", None)
    if own_sizes is not None:
        multiple, smallest = own_sizes(opt)
        opt.size_multiple, opt.min_input_size = multiple, max(smallest, opt.min_input_size)
    opt.sizes_set_by = f"--model {opt.model}" if own_sizes is not None else f"--netG {opt.netG}"
    if not opt.isTrain:
        # Test-time loading mirrors the reference's test.py: one image at a time, in order.
        opt.num_threads = min(opt.num_threads, 1)
        opt.serial_batches = True
        opt.no_flip = True
    return opt


def _parse_gpu_ids(value: Optional[str]):
    """``None`` = choose automatically; ``[]`` = CPU; else a list of GPU indices."""
    if value is None:
        return None
    try:
        ids = [int(v) for v in str(value).split(",") if v.strip() != ""]
    except ValueError:
        raise UserError(f"--gpu_ids '{value}' must be comma-separated integers, e.g. 0 or 0,1; -1 for CPU") from None
    return [i for i in ids if i >= 0]
