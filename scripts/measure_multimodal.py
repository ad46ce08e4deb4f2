#!/usr/bin/env python
"""A model of docs/models.md measured on maps: s/iter, peak memory, paired metrics, diversity.

    python scripts/measure_multimodal.py --dataroot ../shared/datasets/maps --iters 20 -- --netG unet_64
    python scripts/measure_multimodal.py --model spade --dataroot ../shared/datasets/maps --iters 10 -- --label_nc 5

Trains ``--model`` (default bicycle_gan) for ``--iters`` iterations, then runs ``test.py`` on
``--phase`` and scores the results: the model's paired metrics (``metrics.json``) and, for a
model with many outputs per input (``--n_samples K``), the diversity of the K samples of each
input (and target domain), the mean distance between every two of them: LPIPS where its
weights are found (docs/metrics.md), and L1 (always). Flags after ``--`` go to train.py
(test.py reads the architecture from the run's ``train_opt.json``). Prints one markdown table row.

The models that read label maps or one folder per domain get them made from ``--dataroot``
in the temporary folder, as docs/models.md's commands make them: a label model
(``--dataset_mode label``) from the aligned maps tiles (datasets/make_maps_labels.py, the
first max(iters x batch, ``--num_test``) tiles of train/ and of val/, at ``--size``), a multidomain
one from an unaligned dataset (datasets/make_multidomain.py, domains ``photo,map``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# test.py's file of sample k of an input: <input>_fake_B_sample_<k> (BicycleGAN), <input>_fake_<domain>_<k>
# (StarGAN v2); the samples of one input (and domain) share what precedes _<k>.
SAMPLE_FILE = re.compile(r"(.+_fake_.+)_(\d+)\.png$")


def sample_distances(image_dir: Path, weights_dir=None) -> dict:
    """Mean LPIPS (when available) and L1 between every two samples of each input (and domain)."""
    import numpy as np
    import torch
    from PIL import Image

    from evaluation.metrics import MetricSuite

    groups: dict = {}
    for path in sorted(image_dir.glob("*.png")):
        match = SAMPLE_FILE.match(path.name)
        if match:
            groups.setdefault(match.group(1), []).append(path)
    suite = MetricSuite(["lpips"], weights_dir=weights_dir)
    l1, lpips = [], []
    for paths in groups.values():
        images = [torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32)).permute(2, 0, 1)[None]
                  / 127.5 - 1 for p in paths]
        for a, b in itertools.combinations(images, 2):
            l1.append(float((a - b).abs().mean()))
            if "lpips" not in suite.unavailable:
                lpips.append(suite.update(a, real=b)[0]["lpips"])
    return {"diversity_l1": statistics.mean(l1) if l1 else None,
            "diversity_lpips": statistics.mean(lpips) if lpips else None,
            "lpips_unavailable": suite.unavailable.get("lpips")}


def model_data(model: str, dataroot: str, work: Path, tiles: int, size: int) -> tuple:
    """(the data ``model`` reads, its number of image folders): made from ``dataroot`` in ``work``
    where it reads label maps or domain folders (the module docstring); ``dataroot`` otherwise.
    --max_dataset_size counts per folder, so a multidomain epoch of n iterations takes n / 2."""
    from pix2cycle.compatibility import dataset_mode
    from tests.conftest import load_script

    mode = dataset_mode(model)
    if mode == "label":
        load_script("make_maps_labels").convert(Path(dataroot), work / "labels", size, tiles)
        return str(work / "labels"), 1
    if mode == "multidomain":
        names = ("photo", "map")
        return str(load_script("make_multidomain").make_multidomain(Path(dataroot), work / "domains", names)), len(names)
    return dataroot, 1


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
    p.add_argument("--phase", default="val", help="test.py's phase (the label maps of val tiles are 'test')")
    p.add_argument("--num_test", type=int, default=20)
    p.add_argument("--n_samples", type=int, default=3, help="outputs per input, for the models that give many")
    p.add_argument("--metrics", default="l1,psnr,ssim,lpips")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    import test as test_script
    import train as train_script
    from engine import Hook
    from models import MODELS
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
    many = getattr(MODELS.get(args.model), "samples_per_input", False)
    with tempfile.TemporaryDirectory() as work:
        dataroot, folders = model_data(args.model, args.dataroot, Path(work), max(args.iters * args.batch_size, args.num_test),
                              args.size)
        phase = "test" if Path(dataroot).name == "labels" and args.phase == "val" else args.phase
        common = ["--dataroot", dataroot, "--model", args.model, "--name", "m", "--checkpoints_dir", work,
                  "--gpu_ids", "-1", "--num_threads", "0", "--load_size", str(args.size), "--crop_size",
                  str(args.size)]
        clock = StepClock()
        train = [*common, *extra, "--batch_size", str(args.batch_size), "--max_dataset_size",
                 str(-(-args.iters * args.batch_size // folders)), "--n_epochs", "1", "--n_epochs_decay", "0", "--seed", "0",
                 "--no_html", "--print_freq", "1000000", "--display_freq", "1000000"]
        if train_script.main(train, hooks=[clock]) != 0:
            return 1
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results = Path(work) / "results"
        samples = ["--n_samples", str(args.n_samples)] if many else []
        if test_script.main([*common, "--results_dir", str(results), "--phase", phase, "--num_test",
                             str(args.num_test), *samples, "--metrics", args.metrics, "--seed", "0"]) != 0:
            return 1
        folder = results / "m" / f"{phase}_latest"
        metrics_file = folder / "metrics.json"
        metrics = json.loads(metrics_file.read_text())["metrics"] if metrics_file.is_file() else {}
        diversity = sample_distances(folder / "images")
        inputs = len({path.name.split("_fake_")[0] for path in (folder / "images").glob("*_fake_*.png")})
    steps = clock.times[args.warmup:]
    means = {k.removesuffix("_B"): v.get("mean") for k, v in metrics.items() if "unavailable" not in v}
    print(f"CPU: {cpu_model_here()}, torch {torch.__version__} capability {cpu_capability_here()}, "
          f"{args.threads} torch thread(s), load average before: {load_before}")
    if diversity["lpips_unavailable"] and many:
        print(f"lpips unavailable: {diversity['lpips_unavailable']}")
    print("| model | iters x batch | s / iter (median, min-max) | peak RSS (MiB) | PSNR | SSIM | LPIPS "
          "| diversity LPIPS | diversity L1 | test images |")
    print("|---|---|---|---|---|---|---|---|---|---|")

    def fmt(value, digits):
        return "n/a" if value is None else f"{value:.{digits}f}"
    print(f"| {args.model} | {len(clock.times)} x {args.batch_size} | {statistics.median(steps):.3f} "
          f"({min(steps):.3f}-{max(steps):.3f}) | {peak:.0f} | {fmt(means.get('psnr'), 2)} "
          f"| {fmt(means.get('ssim'), 3)} | {fmt(means.get('lpips'), 3)} | {fmt(diversity['diversity_lpips'], 3)} "
          f"| {fmt(diversity['diversity_l1'], 3)} | {inputs} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
