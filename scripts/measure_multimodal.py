#!/usr/bin/env python
"""A model with many outputs per input, measured: s/iter, peak memory, paired metrics, diversity.

    python scripts/measure_multimodal.py --dataroot ../shared/datasets/maps --iters 20 -- --netG unet_64

Trains ``--model`` (default bicycle_gan) for ``--iters`` iterations, then runs ``test.py
--n_samples K`` on ``--phase`` and scores the results: the model's paired metrics
(``metrics.json``) and the diversity of the K samples of each input, the mean distance
between every two of them: LPIPS where its weights are found (docs/metrics.md), and L1
(always). Flags after ``--`` go to train.py and test.py. Prints one markdown table row.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def sample_distances(image_dir: Path, weights_dir=None) -> dict:
    """Mean LPIPS (when available) and L1 between every two samples of each input."""
    import numpy as np
    import torch
    from PIL import Image

    from util.metrics import MetricSuite

    groups: dict = {}
    for path in sorted(image_dir.glob("*_sample_*.png")):
        groups.setdefault(path.name.split("_fake_")[0], []).append(path)
    suite = MetricSuite(["lpips"], weights_dir=weights_dir)
    l1, lpips = [], []
    for paths in groups.values():
        images = [torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32)).permute(2, 0, 1)[None]
                  / 127.5 - 1 for p in paths]
        for a, b in itertools.combinations(images, 2):
            l1.append(float((a - b).abs().mean()))
            if "lpips" not in suite.unavailable:
                lpips.append(suite.update(a, real=b)[0]["lpips"])
    return {"diversity_l1": statistics.mean(l1) if l1 else float("nan"),
            "diversity_lpips": statistics.mean(lpips) if lpips else None,
            "lpips_unavailable": suite.unavailable.get("lpips")}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataroot", required=True)
    p.add_argument("--model", default="bicycle_gan")
    p.add_argument("--iters", type=int, default=20, help="training iterations (batches)")
    p.add_argument("--batch_size", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3, help="first iterations left out of the timing")
    p.add_argument("--size", type=int, default=64, help="--load_size and --crop_size")
    p.add_argument("--phase", default="val")
    p.add_argument("--num_test", type=int, default=20)
    p.add_argument("--n_samples", type=int, default=3)
    p.add_argument("--metrics", default="l1,psnr,ssim,lpips")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    import test as test_script
    import train as train_script
    from engine import Hook
    from util.hardware import cpu_capability_here, cpu_model_here

    torch.set_num_threads(args.threads)

    class StepClock(Hook):
        def __init__(self) -> None:
            self.times: list = []

        def before_step(self, trainer) -> None:
            self.start = time.perf_counter()

        def after_step(self, trainer) -> None:
            self.times.append(time.perf_counter() - self.start)

    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as work:
        common = ["--dataroot", args.dataroot, "--model", args.model, "--name", "m", "--checkpoints_dir", work,
                  "--gpu_ids", "-1", "--num_threads", "0", "--load_size", str(args.size), "--crop_size",
                  str(args.size), *extra]
        clock = StepClock()
        train = [*common, "--batch_size", str(args.batch_size), "--max_dataset_size",
                 str(args.iters * args.batch_size), "--n_epochs", "1", "--n_epochs_decay", "0", "--seed", "0",
                 "--no_html", "--print_freq", "1000000", "--display_freq", "1000000"]
        if train_script.main(train, hooks=[clock]) != 0:
            return 1
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results = Path(work) / "results"
        if test_script.main([*common, "--results_dir", str(results), "--phase", args.phase, "--num_test",
                             str(args.num_test), "--n_samples", str(args.n_samples), "--metrics", args.metrics,
                             "--seed", "0"]) != 0:
            return 1
        folder = results / "m" / f"{args.phase}_latest"
        metrics_file = folder / "metrics.json"
        metrics = json.loads(metrics_file.read_text())["metrics"] if metrics_file.is_file() else {}
        diversity = sample_distances(folder / "images")
    steps = clock.times[args.warmup:]
    means = {k.removesuffix("_B"): v.get("mean") for k, v in metrics.items() if "unavailable" not in v}
    print(f"CPU: {cpu_model_here()}, torch {torch.__version__} capability {cpu_capability_here()}, "
          f"{args.threads} torch thread(s), load average before: {load_before}")
    if diversity["lpips_unavailable"]:
        print(f"lpips unavailable: {diversity['lpips_unavailable']}")
    print("| model | iters x batch | s / iter (median, min-max) | peak RSS (MiB) | PSNR | SSIM | LPIPS "
          "| diversity LPIPS | diversity L1 | test images |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def fmt(value, digits):
        return "n/a" if value is None else f"{value:.{digits}f}"
    print(f"| {args.model} | {len(clock.times)} x {args.batch_size} | {statistics.median(steps):.3f} "
          f"({min(steps):.3f}-{max(steps):.3f}) | {peak:.0f} | {fmt(means.get('psnr'), 2)} "
          f"| {fmt(means.get('ssim'), 3)} | {fmt(means.get('lpips'), 3)} | {fmt(diversity['diversity_lpips'], 3)} "
          f"| {diversity['diversity_l1']:.3f} | {args.num_test} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
