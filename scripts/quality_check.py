#!/usr/bin/env python
"""Does a fast path train as well as fp32? pix2pix runs from the same seed, scored on val.

    python scripts/quality_check.py                       # maps, unet_128 at 128, 800 iterations
    python scripts/quality_check.py --fast "--amp auto --cache_images" --iters 800 --seeds 0,1

Trains photo -> map on ``--dataroot`` (the pix2pix maps set) from the same seed with the
plain fp32 step (every fast path off), with ``--fast``, and with ``--control``: fp32 again,
with the same arithmetic summed in another order, which shows how far rounding alone sends
two GAN runs apart. Each run is tested on ``val`` with ``test.py`` (in its own precision,
with the same seed for dropout); the script then scores the saved PNGs
``fake_B`` against ``real_B``: PSNR (data range 1) and SSIM (Gaussian window), with
``evaluation.metrics`` when it is there, else scikit-image. Results go to a JSON file and a table.
Each run takes a while on a small CPU: ``--skip_training`` scores runs already trained.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

PLAIN = "--conv_impl native --adam_impl foreach"


def run_args(args, name: str) -> List[str]:
    return ["--dataroot", args.dataroot, "--name", name, "--checkpoints_dir", args.checkpoints_dir,
            "--model", "pix2pix", "--netG", "unet_128", "--gpu_ids", "-1", "--seed", str(args.seed)]


def train(args, name: str, flags: str) -> float:
    import train as train_script

    images = len([p for p in Path(args.dataroot, "train").iterdir() if p.is_file()])
    epochs = max(1, round(args.iters / images))
    argv = run_args(args, name) + ["--load_size", "143", "--crop_size", "128", "--n_epochs", str(epochs),
                                   "--n_epochs_decay", "0", "--max_dataset_size", str(args.iters // epochs),
                                   "--no_html", "--display_id", "0", "--save_epoch_freq", "1000",
                                   "--save_latest_freq", "1000000", *flags.split()]
    start = time.time()
    if train_script.main(argv) != 0:
        raise SystemExit(f"training failed: train.py {' '.join(argv)}")
    return time.time() - start


def translate(args, name: str, flags: str) -> Path:
    import test as test_script
    from options.base_options import build_parser

    test_flags = [f for f in flags.split() if f not in ("--cache_images",)]
    drop = {"--adam_impl"}
    kept = [f for i, f in enumerate(test_flags) if f not in drop and (i == 0 or test_flags[i - 1] not in drop)]
    argv = run_args(args, name) + ["--phase", args.phase, "--load_size", "128", "--crop_size", "128",
                                   "--results_dir", args.results_dir, *kept]
    if "--metrics" in build_parser(False, ["--model", "pix2pix"])._option_string_actions:
        argv += ["--metrics", "none"]  # scored below, from the PNG files like any user would
    torch.manual_seed(args.seed)  # dropout stays on at test time, as in the reference
    if test_script.main(argv) != 0:
        raise SystemExit(f"test failed: test.py {' '.join(argv)}")
    return next(Path(args.results_dir, name).glob(f"{args.phase}_*")) / "images"


def load_png(path: Path) -> torch.Tensor:
    array = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)[None] * 2 - 1  # [-1, 1], as models output


def score(image_dir: Path) -> Dict[str, dict]:
    fakes = sorted(image_dir.glob("*_fake_B.png"))
    pairs = [(f, f.with_name(f.name.replace("_fake_B", "_real_B"))) for f in fakes]
    try:
        from evaluation.metrics import MetricSuite
    except ImportError:
        MetricSuite = None
    if MetricSuite is not None:
        suite = MetricSuite(["psnr", "ssim"], device="cpu")
        for fake, real in pairs:
            suite.update(load_png(fake), real=load_png(real))
        result = suite.compute()
        result["library"] = "evaluation.metrics"
        return result
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    values = {"psnr": [], "ssim": []}
    for fake, real in pairs:
        a, b = (np.asarray(Image.open(p).convert("RGB"), dtype=np.float64) / 255.0 for p in (fake, real))
        values["psnr"].append(peak_signal_noise_ratio(b, a, data_range=1.0))
        values["ssim"].append(structural_similarity(b, a, data_range=1.0, channel_axis=2, gaussian_weights=True,
                                                    sigma=1.5, use_sample_covariance=False))
    result = {k: {"mean": statistics.mean(v), "std": statistics.pstdev(v), "n": len(v)} for k, v in values.items()}
    result["library"] = "scikit-image"
    return result


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataroot", default=str(REPO.parent / "shared" / "datasets" / "maps"))
    p.add_argument("--phase", default="val", help="the images to score")
    p.add_argument("--iters", type=int, default=800, help="training iterations (batch 1)")
    p.add_argument("--fast", default="--amp auto --cache_images",
                   help="flags of the fast run (--amp auto: bf16 where the hardware has it, else fp32)")
    p.add_argument("--control", default="--conv_impl auto --adam_impl fused",
                   help="flags of a second fp32 run that differs from the plain one only in the order of its "
                        "sums (GEMM convolutions, fused Adam): how far rounding alone moves a GAN run; "
                        "'none' skips it")
    p.add_argument("--seeds", default="0", help="comma-separated; every run is trained once per seed")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--checkpoints_dir", default="./checkpoints/quality_check")
    p.add_argument("--results_dir", default="./results/quality_check")
    p.add_argument("--skip_training", action="store_true", help="score runs already trained in --checkpoints_dir")
    p.add_argument("--json", default="quality_check.json")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = {"fp32": PLAIN, "fast": args.fast}
    if args.control != "none":
        runs["fp32_reordered"] = args.control
    seeds = [int(s) for s in args.seeds.split(",")]
    out = {"args": vars(args), "seeds": {}}
    for seed in seeds:
        args.seed = seed
        entries = out["seeds"][str(seed)] = {}
        for label, flags in runs.items():
            name = f"quality_{label}" + (f"_seed{seed}" if seed else "")
            entry = entries[label] = {"flags": flags}
            if not args.skip_training:
                entry["train_seconds"] = train(args, name, flags)
            entry["scores"] = score(translate(args, name, flags))
            print(f"seed {seed} {label}: {flags}: " + ", ".join(
                f"{k} {v['mean']:.4f} ± {v['std']:.3f}" for k, v in entry["scores"].items() if isinstance(v, dict)),
                flush=True)
            Path(args.json).write_text(json.dumps(out, indent=1))  # partial results survive an interruption
        for label in runs:
            if label != "fp32":
                entries[label]["minus_fp32"] = {k: entries[label]["scores"][k]["mean"] - entries["fp32"]["scores"][k]["mean"]
                                                for k in ("psnr", "ssim")}
    print("\n| seed | run | flags | PSNR dB | SSIM | minus fp32 | train s |\n|---|---|---|---|---|---|---|")
    for seed, entries in out["seeds"].items():
        for label, entry in entries.items():
            s, d = entry["scores"], entry.get("minus_fp32")
            diff = f"{d['psnr']:+.2f} dB, {d['ssim']:+.4f}" if d else ""
            print(f"| {seed} | {label} | `{entry['flags']}` | {s['psnr']['mean']:.2f} | {s['ssim']['mean']:.4f} | "
                  f"{diff} | {entry.get('train_seconds', float('nan')):.0f} |")
    Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
