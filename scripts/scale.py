#!/usr/bin/env python
"""How cost grows: ``python scripts/benchmark.py --scale`` (this module does the work).

    python scripts/benchmark.py --scale --quick      # a few minutes on 2 CPU cores
    python scripts/benchmark.py --scale              # up to a million files (about 15 minutes)

Three tables, each measured side by side in one run:

* **files**: start-up of a training run on 1k .. 1M tiny image files: the listing and sort
  (``make_dataset``), building the dataset mode and its loader, and the first batch, in a fresh
  process each (so the peak RSS is that of the start-up alone), for the aligned folder layout
  and, where ``--dataset_mode webdataset`` is registered, for its shards of the same files.
  The growth column is the exponent k of time ~ files^k between one size and the one before:
  1 is linear.
* **processes**: images per second and the largest process's peak RSS of ``train.py`` under
  ``torchrun`` with 1 and 2 processes (gloo, one torch thread each), pix2pix at 128 px. The
  time per iteration is the difference of two runs of different lengths divided by the extra
  iterations, so start-up and the final save cancel.
* **loader**: images per second of the data loader alone on the maps photos at 256 px with 0,
  1 and 2 workers, against those of the pix2pix training step at 256 px (unet_256), so one
  sees whether data loading can keep the step fed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FILES_FULL = (1_000, 10_000, 100_000, 1_000_000)
FILES_QUICK = (1_000, 10_000, 100_000)
QUIET = ["--gpu_ids", "-1", "--num_threads", "0", "--display_id", "0", "--no_html", "--print_freq", "1000000",
         "--display_freq", "1000000", "--update_html_freq", "1000000"]


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# ---------------------------------------------------------------- files


def write_tiny_files(root: Path, count: int) -> Path:
    """``count`` 16x8 A|B PNGs in ``root/train`` (the aligned layout), all the same bytes, so a
    million take about a minute to write and a few hundred MB of inodes, not of images."""
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 16, 3), dtype=np.uint8)).save(buffer, "PNG")
    data = buffer.getvalue()
    train = root / "train"
    train.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        with open(train / f"{i:07d}.png", "wb") as f:
            f.write(data)
    return root


def startup_args(dataroot: Path, dataset_mode: str) -> List[str]:
    return ["--dataroot", str(dataroot), "--model", "pix2pix", "--dataset_mode", dataset_mode, "--netG", "unet_32",
            "--load_size", "8", "--crop_size", "8", "--preprocess", "none", "--no_flip", *QUIET]


def measure_startup(argv: List[str]) -> dict:
    """In this (fresh) process: the listing, the dataset and loader, the first batch; seconds and
    the peak RSS above that of the imports."""
    from data import create_dataloader, create_dataset
    from data.image_folder import make_dataset
    from options import parse_options

    opt = parse_options(argv, is_train=True)
    base = _rss_mib()
    out = {}
    if opt.dataset_mode == "aligned":
        start = time.perf_counter()
        listed = make_dataset(os.path.join(opt.dataroot, opt.phase))
        out["listing_s"], out["listed"] = time.perf_counter() - start, len(listed)
        del listed
    start = time.perf_counter()
    dataset = create_dataset(opt)
    out["dataset_s"] = time.perf_counter() - start
    start = time.perf_counter()
    loader = create_dataloader(opt, dataset)
    batch = next(iter(loader))
    out["first_batch_s"] = time.perf_counter() - start
    out["total_s"] = out["dataset_s"] + out["first_batch_s"]  # the dataset mode lists again: listing_s is inside
    out["images"] = len(dataset)
    out["batch"] = list(batch["A"].shape)
    out["peak_rss_above_imports_mib"] = _rss_mib() - base
    return out


def startup_in_subprocess(argv: List[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, "--_startup", json.dumps(argv)], capture_output=True,
                          text=True, cwd=REPO, timeout=3600)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def shard_layout(dataroot: Path, out: Path, shard_size: int) -> Optional[Path]:
    """The same files as WebDataset shards, where that dataset mode and its writer exist."""
    from data import DATASETS

    writer = REPO / "scripts" / "make_shards.py"
    if "webdataset" not in DATASETS.names() or not writer.is_file():
        return None
    subprocess.run([sys.executable, str(writer), str(dataroot), str(out), "--shard_size", str(shard_size)],
                   check=True, cwd=REPO, capture_output=True, timeout=7200)
    return out


def files_table(counts, work: Path) -> List[dict]:
    rows = []
    for count in counts:
        root = write_tiny_files(work / f"files_{count}", count)
        layouts = {"folder": (root, "aligned")}
        shards = shard_layout(root, work / f"shards_{count}", shard_size=10_000)
        if shards is not None:
            layouts["shards"] = (shards, "webdataset")
        for layout, (dataroot, mode) in layouts.items():
            print(f"  start-up, {count} files, {layout}", flush=True)
            rows.append({"files": count, "layout": layout, **startup_in_subprocess(startup_args(dataroot, mode))})
            print(f"    {json.dumps(rows[-1])}", flush=True)  # kept in the log if a larger size fails
        shutil.rmtree(root, ignore_errors=True)
        if shards is not None:
            shutil.rmtree(shards, ignore_errors=True)
    return rows


def growth(rows: List[dict], row: dict, key: str) -> str:
    """The exponent k of ``key`` ~ files^k against the previous size of the same layout."""
    before = [r for r in rows if r["layout"] == row["layout"] and r["files"] < row["files"] and key in r]
    if not before or key not in row or before[-1][key] <= 0 or row[key] <= 0:
        return ""
    prev = before[-1]
    return f"{math.log(row[key] / prev[key]) / math.log(row['files'] / prev['files']):.2f}"


def files_markdown(rows: List[dict]) -> str:
    lines = ["| files | layout | listing + sort (s), inside dataset | dataset (s) | loader + first batch (s) | total (s) | growth k | "
             "peak RSS above imports (MiB) |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['files']} | {row['layout']} | error: {row['error']} | | | | | |")
            continue
        listing = f"{row['listing_s']:.3f}" if "listing_s" in row else "-"
        lines.append(f"| {row['files']} | {row['layout']} | {listing} | {row['dataset_s']:.3f} | "
                     f"{row['first_batch_s']:.3f} | {row['total_s']:.3f} | {growth(rows, row, 'total_s')} | "
                     f"{row['peak_rss_above_imports_mib']:.0f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- processes


def torchrun_seconds(dataroot: str, processes: int, iters: int, work: Path) -> dict:
    """Wall seconds of ``train.py`` for ``iters`` iterations per process, and the peak RSS of the
    largest process (RUSAGE_CHILDREN: torchrun waits for its workers)."""
    name = f"p{processes}_{iters}"
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            str(REPO / "train.py"), "--dataroot", dataroot, "--name", name, "--checkpoints_dir", str(work / "runs"),
            "--model", "pix2pix", "--netG", "unet_128", "--load_size", "128", "--crop_size", "128", "--no_flip",
            "--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", str(iters * processes),
            "--seed", "0", *QUIET]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, cwd=work, env=env, timeout=3600)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"torchrun with {processes} processes failed: {done.stderr.strip()[-500:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": seconds, "peak_rss_mib": max(peak, before) / 1024.0}


def processes_table(dataroot: str, iters: tuple, work: Path) -> List[dict]:
    short, long = iters
    rows = []
    for processes in (1, 2):
        print(f"  torchrun, {processes} process(es), {short} and {long} iterations", flush=True)
        a = torchrun_seconds(dataroot, processes, short, work)
        b = torchrun_seconds(dataroot, processes, long, work)
        per_iter = (b["seconds"] - a["seconds"]) / (long - short)
        rows.append({"processes": processes, "s_per_iter": per_iter, "images_per_s": processes / per_iter,
                     "peak_rss_mib": b["peak_rss_mib"], "runs_s": [a["seconds"], b["seconds"]]})
    return rows


def processes_markdown(rows: List[dict]) -> str:
    one = rows[0]["images_per_s"]
    lines = ["| processes | s / iteration | images / s | vs 1 process | largest process peak RSS (MiB) |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['processes']} | {row['s_per_iter']:.3f} | {row['images_per_s']:.2f} | "
                     f"{row['images_per_s'] / one:.2f}x | {row['peak_rss_mib']:.0f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- loader against the step


def loader_rate(dataroot: str, workers: int, batches: int) -> float:
    from data import create_dataloader, create_dataset
    from options import parse_options

    argv = ["--dataroot", dataroot, "--model", "pix2pix", "--direction", "BtoA", *QUIET]
    argv[argv.index("--num_threads") + 1] = str(workers)
    opt = parse_options(argv, is_train=True)
    loader = create_dataloader(opt, create_dataset(opt))
    iterator = iter(loader)
    next(iterator)  # workers started, first files opened
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches / (time.perf_counter() - start)


def step_rate(dataroot: str, steps: int) -> float:
    from data import create_dataloader, create_dataset
    from models import create_model
    from options import parse_options

    opt = parse_options(["--dataroot", dataroot, "--model", "pix2pix", "--direction", "BtoA", *QUIET], is_train=True)
    batch = next(iter(create_dataloader(opt, create_dataset(opt))))
    model = create_model(opt)
    model.setup(opt)
    model.set_input(batch)
    model.optimize_parameters()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        model.set_input(batch)
        model.optimize_parameters()
    return steps / (time.perf_counter() - start)


def loader_table(dataroot: str, batches: int, steps: int) -> dict:
    print("  training step, pix2pix 256 px", flush=True)
    out = {"step_images_per_s": step_rate(dataroot, steps), "loader": {}}
    for workers in (0, 1, 2):
        print(f"  data loader, {workers} worker(s)", flush=True)
        out["loader"][workers] = loader_rate(dataroot, workers, batches)
    return out


def loader_markdown(result: dict) -> str:
    step = result["step_images_per_s"]
    lines = ["| data loader workers | loader images / s | step images / s (pix2pix, 256 px) | loader / step |",
             "|---|---|---|---|"]
    for workers, rate in result["loader"].items():
        lines.append(f"| {workers} | {rate:.1f} | {step:.2f} | {rate / step:.1f}x |")
    return "\n".join(lines)


# ---------------------------------------------------------------- the run


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="up to 100k files, shorter runs")
    p.add_argument("--files", default=None, help="comma-separated file counts (default 1000,...,1000000)")
    p.add_argument("--dataroot", default=str(REPO.parent / "shared" / "datasets" / "maps"),
                   help="pix2pix maps (train/): the loader table's photos; demo images stand in when absent")
    p.add_argument("--no_files", action="store_true")
    p.add_argument("--no_processes", action="store_true")
    p.add_argument("--no_loader", action="store_true")
    p.add_argument("--json", default="scale.json", help="where to write the raw results")
    p.add_argument("--_startup", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.files = [int(n) for n in args.files.split(",")] if args.files else list(FILES_QUICK if args.quick
                                                                                  else FILES_FULL)
    return args


def demo_root(work: Path, count: int, size: int) -> str:
    sys.path.insert(0, str(REPO / "datasets"))
    from make_demo_data import make_demo_dataset

    return str(make_demo_dataset(work / f"demo_{size}", "aligned", n_train=count, n_test=1, size=size, seed=0))


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args._startup:
        print(json.dumps(measure_startup(json.loads(args._startup))))
        return 0
    import torch

    from util.hardware import cpu_capability_here, cpu_model_here

    out: Dict[str, object] = {"cpu": cpu_model_here(), "cpu_capability": cpu_capability_here(),
                              "torch": torch.__version__, "load_before": os.getloadavg()}
    print(f"# scale on {out['cpu']}, torch {out['torch']} CPU capability {out['cpu_capability']}, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    tables = []
    with tempfile.TemporaryDirectory(prefix="scale_") as tmp:
        work = Path(tmp)
        if not args.no_files:
            out["files"] = files_table(args.files, work)
            tables.append("### Start-up against the number of files\n\n" + files_markdown(out["files"]))
        if not args.no_processes:
            iters = (4, 12) if args.quick else (8, 32)
            out["processes"] = processes_table(demo_root(work, 2 * iters[1], 128), iters, work)
            tables.append("### 1 and 2 processes (torchrun, gloo, 1 thread each)\n\n"
                          + processes_markdown(out["processes"]))
        if not args.no_loader:
            maps = Path(args.dataroot)
            dataroot = str(maps) if (maps / "train").is_dir() else demo_root(work, 40, 256)
            batches, steps = (20, 2) if args.quick else (100, 5)
            out["loader"] = {"dataroot": dataroot, **loader_table(dataroot, batches, steps)}
            tables.append("### Data loader against the training step, 256 px\n\n" + loader_markdown(out["loader"]))
    out["load_after"] = os.getloadavg()
    Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    print("\n" + "\n\n".join(tables))
    print(f"\nraw results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
