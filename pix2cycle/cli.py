"""What translate.py and export.py share: the flags that pick a run's generator, and main()."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from options.base_options import _Parser
from pix2cycle.translator import ARCHITECTURE_ARGS, Translator
from util.errors import UserError, report_user_error, user_error_from_os_error


def make_parser(description: str) -> argparse.ArgumentParser:
    """A parser (errors are one ``error:`` line, exit 2) with the flags that choose the generator."""
    parser = _Parser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--name", default=None, help="the run: weights in <checkpoints_dir>/<name>/")
    parser.add_argument("--model_dir", default=None,
                        help="instead of --name: a model package (export.py --format hub) or its Hub id user/name")
    parser.add_argument("--checkpoints_dir", default="./checkpoints", help="where runs are stored")
    parser.add_argument("--epoch", default="latest", help="which weights: latest, best, or an epoch number")
    parser.add_argument("--direction", choices=["AtoB", "BtoA"], default=None,
                        help="CycleGAN runs: AtoB uses G_A (default), BtoA uses G_B")
    parser.add_argument("--model_suffix", default=None, help="use <epoch>_net_G<suffix>.pth")
    parser.add_argument("--verbose", action="store_true",
                        help="tracebacks of errors (export.py: also torch.onnx's own progress lines)")
    parser.add_argument("--trust_remote_code", action="store_true",
                        help="import a plugin (package.module.Class) that the run's train_opt.json names: "
                             "only for code you trust (naming it with --netG also allows it)")
    g = parser.add_argument_group("architecture, for weights without train_opt.json")
    for flag, kind in (("--netG", str), ("--norm", str), ("--ngf", int), ("--input_nc", int),
                       ("--output_nc", int)):
        g.add_argument(flag, type=kind, default=None)
    g.add_argument("--no_dropout", action="store_true", default=None)
    return parser


# Flags that pick within a run folder, with their defaults: a package's config.json says them.
RUN_FLAGS = {"name": None, "checkpoints_dir": "./checkpoints", "epoch": "latest", "model_suffix": None,
             **dict.fromkeys(ARCHITECTURE_ARGS)}


def changed_flags(args: argparse.Namespace, defaults: dict) -> list:
    """``--flag`` of every option in ``defaults`` that ``args`` gives another value: a flag a
    command does not read there, to refuse rather than ignore."""
    return [f"--{k}" for k, default in defaults.items() if getattr(args, k) != default]


def run_label(args: argparse.Namespace) -> str:
    """A folder name for what is loaded: the run's --name, or the package's (a Hub id's name)."""
    return args.name or Path(str(args.model_dir).rstrip("/")).name


def load_translator(args: argparse.Namespace, **kwargs) -> Translator:
    """The generator chosen by ``make_parser``'s flags (a run by --name, or a package by
    --model_dir); ``kwargs`` go to ``from_checkpoint`` / ``from_pretrained``."""
    if args.model_dir is not None:
        given = changed_flags(args, RUN_FLAGS)
        if given:
            raise UserError(f"{', '.join(given)}: for a run folder (--name); with --model_dir the package's "
                            f"config.json describes the generator: drop {'them' if len(given) > 1 else 'it'}")
        return Translator.from_pretrained(args.model_dir, direction=args.direction,
                                          trust_remote_code=args.trust_remote_code, **kwargs)
    if args.name is None:
        raise UserError("give --name (a run under --checkpoints_dir) or --model_dir (a model package)")
    architecture = {k: getattr(args, k) for k in ARCHITECTURE_ARGS if getattr(args, k) is not None}
    return Translator.from_checkpoint(Path(args.checkpoints_dir) / args.name, epoch=args.epoch,
                                      direction=args.direction, model_suffix=args.model_suffix,
                                      trust_remote_code=args.trust_remote_code, **kwargs, **architecture)


def run_main(run: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser,
             argv: Optional[Sequence[str]]) -> int:
    """Parse ``argv`` and ``run``; user mistakes and file-system failures are one line, exit 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    try:
        return run(parser.parse_args(argv))
    except UserError as e:
        return report_user_error(e, verbose)
    except OSError as e:
        return report_user_error(user_error_from_os_error(e), verbose)
