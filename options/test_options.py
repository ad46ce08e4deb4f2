"""Flags used only for testing."""

from __future__ import annotations

import argparse

from evaluation.metrics import METRICS
from evaluation.results import SAVE_DTYPES


def add_test_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("testing")
    g.add_argument("--results_dir", default="./results/", help="saves results here")
    g.add_argument("--aspect_ratio", type=float, default=1.0, help="aspect ratio of result images")
    g.add_argument("--phase", default="test", help="train, val, test, etc")
    g.add_argument("--eval", action="store_true", help="use eval mode during test time")
    g.add_argument("--use_ema", action="store_true",
                   help="run the generators' weight averages (<epoch>_net_G_ema.pth, trained with --ema_decay)")
    g.add_argument("--num_test", type=int, default=None, help="how many test images to run (default: all)")
    g.add_argument("--metrics", default="none",
                   help=f"metrics to compute, e.g. psnr,ssim,l1 ({', '.join(METRICS.names())}) or none; those "
                        "that cannot be computed here (no pairs, weights not found) are skipped with one line "
                        "(default of this --model: %(default)s)")
    g.add_argument("--save_dtype", default="auto", choices=list(SAVE_DTYPES),
                   help="type of saved results: auto = the data's (16-bit in, 16-bit out); 8-bit PNGs for photo datasets")
    g.add_argument("--display_channels", default=None,
                   help="1-based channels the gallery previews show, e.g. 3,2,1 (default: the first three)")
    g.add_argument("--trust_remote_code", action="store_true",
                   help="import a plugin (--model/--netG package.module.Class) that the run's train_opt.json "
                        "names, without naming it again here: only for code you trust")
    g.add_argument("--n_samples", type=int, default=1,
                   help="outputs per input of a model with many (bicycle_gan: z ~ N(0, I); stargan_v2: style "
                        "codes), side by side in the gallery")
    # Test images are scaled to crop_size and not cropped further, as in the reference.
    parser.set_defaults(load_size=parser.get_default("crop_size"))
