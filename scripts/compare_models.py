#!/usr/bin/env python
"""CycleGAN, CUT and FastCUT side by side: seconds per iteration, peak memory, paired metrics.

    python scripts/compare_models.py --dataroot ../shared/datasets/maps_unaligned --iters 30

Each model trains for ``--iters`` iterations (batch 1, ``--crop_size`` px, the models'
default widths) in a fresh process, one after another, and ``test.py --metrics psnr,ssim,l1``
then scores it on ``testA`` against ``testB`` (``<x>_A`` ~ ``<x>_B`` files pair). Seconds per
iteration are the median of the steps after ``--warmup`` (``set_input`` + the step, as the
training loop times them); peak memory is the process's peak RSS (its data loading
included). Prints a markdown table. On a shared machine compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# label -> training flags
MODELS = {
    "CycleGAN": ["--model", "cycle_gan"],
    "CUT": ["--model", "cut", "--CUT_mode", "CUT"],
    "FastCUT": ["--model", "cut", "--CUT_mode", "FastCUT"],
    # Label maps of datasets/make_maps_labels.py (--dataroot of its layout); no VGG loss: its
    # weights are not downloaded.
    "pix2pixHD": ["--model", "pix2pixhd", "--label_nc", "6", "--lambda_vgg", "0"],
    "SPADE": ["--model", "spade", "--label_nc", "5", "--contain_dontcare_label", "--lambda_vgg", "0"],
}


def run_one(label: str, args: argparse.Namespace) -> dict:
    """Train and test one model in this process; returns its figures."""
    import json as json_

    import test as test_script
    import train as train_script
    from engine import Hook

    class StepClock(Hook):
        def __init__(self) -> None:
            self.times: list = []

        def before_step(self, trainer) -> None:
            self.start = time.perf_counter(), time.process_time()

        def after_step(self, trainer) -> None:
            # CPU time of all this process's threads: less sensitive to other processes than wall time.
            self.times.append((time.perf_counter() - self.start[0], time.process_time() - self.start[1]))

    work = Path(args.work)
    size = ["--load_size", str(args.load_size), "--crop_size", str(args.crop_size)]
    common = ["--dataroot", args.dataroot, "--name", label, "--checkpoints_dir", str(work / "checkpoints"),
              "--gpu_ids", "-1", "--num_threads", str(args.num_threads)]
    clock = StepClock()
    train = [*common, *MODELS[label], *size, "--max_dataset_size", str(args.iters), "--n_epochs", "1",
             "--n_epochs_decay", "0", "--seed", "0", "--no_html", "--display_id", "0", "--print_freq", "1000000"]
    if train_script.main(train, hooks=[clock]) != 0:
        raise SystemExit(f"{label}: training failed")
    peak_train = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    test = [*common, "--model", MODELS[label][1], "--results_dir", str(work / "results"), "--phase", "test",
            "--load_size", str(args.crop_size), "--crop_size", str(args.crop_size), "--metrics", "psnr,ssim,l1",
            "--num_test", str(args.num_test)]
    start = time.perf_counter()
    if test_script.main(test) != 0:
        raise SystemExit(f"{label}: testing failed")
    test_s = time.perf_counter() - start
    metrics = json_.loads((work / "results" / label / "test_latest" / "metrics.json").read_text())["metrics"]
    steps = [wall for wall, _ in clock.times[args.warmup:]]
    cpu = [c for _, c in clock.times[args.warmup:]]
    # CycleGAN scores both ways (psnr_B is A -> B); the A -> B figures are compared.
    scores = {k[:-2] if k.endswith("_B") else k: v for k, v in metrics.items() if not k.endswith("_A")}
    return {"label": label, "iters": len(clock.times), "s_per_iter": statistics.median(steps),
            "s_per_iter_min": min(steps), "s_per_iter_max": max(steps), "cpu_s_per_iter": statistics.median(cpu),
            "peak_train_mib": peak_train, "test_s": test_s,
            "metrics": {k: v.get("mean", v.get("value")) for k, v in scores.items() if "unavailable" not in v},
            "pairs": max((v.get("n", 0) for v in metrics.values()), default=0)}


def table(rows: list) -> str:
    base = next((r for r in rows if r["label"] == "CycleGAN"), rows[0])
    lines = [f"| model | s / iter, wall (median, min-max) | CPU s / iter | vs {base['label']} (CPU s) | peak RSS (MiB) "
             "| PSNR | SSIM | L1 | test pairs |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["metrics"]
        lines.append(f"| {r['label']} | {r['s_per_iter']:.3f} ({r['s_per_iter_min']:.3f}-{r['s_per_iter_max']:.3f}) "
                     f"| {r['cpu_s_per_iter']:.3f} | {r['cpu_s_per_iter'] / base['cpu_s_per_iter']:.2f}x | {r['peak_train_mib']:.0f} "
                     f"({r['peak_train_mib'] / base['peak_train_mib']:.2f}x) | {m.get('psnr', float('nan')):.2f} "
                     f"| {m.get('ssim', float('nan')):.3f} | {m.get('l1', float('nan')):.3f} | {r['pairs']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataroot", required=True, help="unaligned data with trainA/B and testA/B (<x>_A ~ <x>_B)")
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3, help="first iterations left out of the timing")
    p.add_argument("--load_size", type=int, default=143)
    p.add_argument("--crop_size", type=int, default=128)
    p.add_argument("--num_test", type=int, default=50)
    p.add_argument("--num_threads", type=int, default=0, help="data loading workers")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per process (on a shared, busy CPU more threads mostly wait for each other)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--json", help="write the raw figures here")
    p.add_argument("--one", help=argparse.SUPPRESS)  # a child process: one model
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        print("RESULT " + json.dumps(run_one(args.one, args)))
        return 0
    rows = []
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as work:
        for label in args.models.split(","):
            # A fresh process per model: its peak RSS is its own.
            out = subprocess.run([sys.executable, __file__, *(argv or sys.argv[1:]), "--one", label, "--work", work],
                                 capture_output=True, text=True, cwd=REPO,
                                 env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.stderr.write(out.stdout[-2000:] + out.stderr[-3000:])
                return 1
            rows.append(json.loads(line[len("RESULT "):]))
            print(f"{label}: {rows[-1]['s_per_iter']:.3f} s/iter", file=sys.stderr)
    import torch

    from util.hardware import cpu_capability_here, cpu_model_here
    print(f"CPU: {cpu_model_here()}, torch {torch.__version__} capability {cpu_capability_here()}, "
          f"{args.threads} torch thread(s) per run, load average before: {load_before}")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
