#!/usr/bin/env python
"""Speed benchmark: training step, test.py throughput, framework overhead, machine peak.

    python scripts/benchmark.py --quick                 # a few minutes on 2 CPU cores
    python scripts/benchmark.py --json docs/benchmarks.json --markdown docs/benchmarks_run.md
    python scripts/benchmark.py --scale --quick         # how cost grows (scripts/scale.py)

Prints markdown tables and writes every raw number to JSON. What is measured:

* **machine**: dense matmul and 3x3 convolution throughput, fp32 and bf16 (fp16 on GPUs).
* **training**: seconds per iteration (``set_input`` + ``optimize_parameters``, synthetic
  batches) of pix2pix (unet_256 at 256, unet_128 at 128) and cycle_gan (resnet_9blocks), per
  configuration of the speed flags. All configurations of one case live in one process and
  take turns, one iteration each, so load from other processes hits them alike; the
  median and min-max are over the iterations after warm-up. The first iteration (which
  includes ``--compile``'s compilation) is reported apart. FLOPs are counted once per case
  with ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs = 2 x multiply-adds of
  convolutions and matrix products, forward + backward as autograd runs them; norms,
  activations and the optimizer are not counted), and achieved FLOP/s is reported as a
  fraction of the measured dense matmul rate in the configuration's compute precision.
* **peak memory**: each configuration again in a fresh process (peak RSS on the CPU,
  ``max_memory_allocated`` on a GPU).
* **test.py**: images per second of the real ``test.py`` loop (loading, forward, PNGs).
* **overhead**: the real ``train.py`` loop per iteration against the bare step of the same
  model (framework = data loading, logging, bookkeeping).

Timings on a shared machine are noisy: compare ratios within one run, never across runs.
Where other processes take the cores, wall time also counts waiting for one; the CPU time
of each iteration (and the speed-up and share of peak computed from it) then says more,
best measured with ``--threads 1``. On a device without native bf16 the bf16
configurations are left out of the default lists (``--emulated_bf16`` keeps them); the
header names the CPU, torch's CPU capability and whether bf16 is native.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from util.hardware import cpu_capability_here, cpu_model_here, native_bf16_here, resolve_amp  # noqa: E402

# name -> extra command-line flags. "plain" is the eager fp32 step with every fast path off.
CONFIGS: Dict[str, str] = {
    "plain": "--conv_impl native --adam_impl foreach",
    "plain_loop_adam": "--conv_impl native --adam_impl for_loop",
    "default": "",
    "auto": "--amp auto",
    "native_conv": "--conv_impl native",
    "channels_last": "--channels_last",
    "compile": "--compile",
    "bf16": "--amp bf16",
    "bf16_native_conv": "--amp bf16 --conv_impl native",
    "bf16_foreach_adam": "--amp bf16 --adam_impl foreach",
    "bf16_channels_last": "--amp bf16 --channels_last",
    "bf16_compile": "--amp bf16 --compile",
    "fp16": "--amp fp16",
    "fp16_channels_last": "--amp fp16 --channels_last",
    "fp16_compile": "--amp fp16 --compile",
}
QUICK = {"cpu": ["plain", "default", "auto", "bf16"], "cuda": ["plain", "default", "auto", "fp16", "bf16"]}
FULL = {"cpu": ["plain", "plain_loop_adam", "default", "native_conv", "channels_last", "bf16",
                "bf16_native_conv", "bf16_foreach_adam", "bf16_channels_last", "compile", "bf16_compile"],
        "cuda": ["plain", "default", "channels_last", "fp16", "fp16_channels_last", "bf16", "compile"]}
SMALL = ["plain", "default", "bf16", "bf16_channels_last"]
# The full run: (model, size, batch, configurations, measured iterations). GEMM convolutions
# and the Adam variants only matter for the U-Net, so CycleGAN skips those ablations.
FULL_PLAN = {
    "cpu": [("pix2pix", 256, 1, FULL["cpu"], 5), ("pix2pix", 256, 4, SMALL, 3),
            ("pix2pix", 128, 1, FULL["cpu"], 5), ("pix2pix", 128, 4, SMALL, 3),
            ("cycle_gan", 256, 1, ["plain", "default", "channels_last", "bf16", "bf16_channels_last"], 3),
            ("cycle_gan", 256, 2, ["plain", "default", "bf16", "bf16_channels_last"], 2),
            ("cycle_gan", 128, 1, ["plain", "default", "channels_last", "bf16", "bf16_channels_last", "compile",
                                   "bf16_compile"], 4),
            ("cycle_gan", 128, 4, ["plain", "default", "bf16", "bf16_channels_last"], 3)],
    "cuda": [(m, s, b, FULL["cuda"], 20) for m in ("pix2pix", "cycle_gan") for s in (256, 128) for b in (1, 4)],
}
TEST_CONFIGS = {"cpu": ["plain", "default", "bf16", "bf16_channels_last", "compile", "bf16_compile"],
                "cuda": ["plain", "default", "fp16", "fp16_compile"]}
GENERATOR = {("pix2pix", 256): "unet_256", ("pix2pix", 128): "unet_128"}  # cycle_gan: resnet_9blocks


def without_emulated_bf16(configs: List[str], args) -> List[str]:
    """``configs`` less the bf16 ones when the device would emulate bf16 (``args.skipped_bf16``)."""
    return [c for c in configs if not (args.skipped_bf16 and c.startswith("bf16"))]


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def model_args(model: str, size: int, config: str, ngf: int, ndf: int, device: str) -> List[str]:
    netG = GENERATOR.get((model, size), "unet_128" if model == "pix2pix" else "resnet_9blocks")
    return ["--dataroot", "unused", "--model", model, "--netG", netG, "--crop_size", str(size),
            "--load_size", str(size), "--ngf", str(ngf), "--ndf", str(ndf),
            "--gpu_ids", "0" if device == "cuda" else "-1", *CONFIGS[config].split()]


def build_model(args: List[str]):
    from models import create_model
    from options import parse_options

    opt = parse_options(args, is_train=True)
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup(opt)
    return model


def synthetic_batch(size: int, batch: int) -> dict:
    g = torch.Generator().manual_seed(1)
    return {"A": torch.rand(batch, 3, size, size, generator=g) * 2 - 1,
            "B": torch.rand(batch, 3, size, size, generator=g) * 2 - 1,
            "A_paths": ["a"] * batch, "B_paths": ["b"] * batch}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def train_step(model, data: dict, device: str) -> None:
    model.train_step(data)
    sync(device)


# ----------------------------------------------------------------------------- machine
def machine_info(device: str) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": cpu_model_here(), "cpu_capability": cpu_capability_here(),
            "cpu_bf16": native_bf16_here(torch.device("cpu")), "cpus": os.cpu_count(),
            "load_average": load_average()}
    with contextlib.suppress(OSError, ValueError):
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def best_rate(fn: Callable[[], None], flops: float, device: str, repeats: int) -> float:
    fn()
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return flops / best


def machine_peak(device: str, quick: bool, emulated_bf16: bool = False) -> dict:
    """GFLOP/s of a dense matmul and of a 3x3 256->256 convolution (forward + backward).
    Emulated bf16 gets the quick sizes: at the full ones it alone would take minutes."""
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    if device == "cuda":
        dtypes["fp16"] = torch.float16
    out = {}
    for name, dtype in dtypes.items():
        small = quick or (emulated_bf16 and dtype is torch.bfloat16)
        n = 1024 if small else 2048
        a = torch.randn(n, n, device=device, dtype=dtype)
        out[f"matmul_{name}"] = best_rate(lambda a=a: a @ a, 2 * n ** 3, device, 3 if small else 5) / 1e9
        side = 32 if small else 64
        for fmt in (torch.contiguous_format, torch.channels_last):
            conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(device, dtype, memory_format=fmt)
            x = torch.randn(1, 256, side, side, device=device, dtype=dtype).contiguous(memory_format=fmt)
            x.requires_grad_()

            def fwd_bwd(conv=conv, x=x):
                conv(x).sum().backward()

            rate = best_rate(fwd_bwd, 3 * 2 * 256 * 256 * 9 * side * side, device, 3 if small else 5) / 1e9
            key = f"conv_{name}"
            out[key] = max(out.get(key, 0.0), rate)
    return out


# ----------------------------------------------------------------------------- training
def count_flops(model_name: str, size: int, batch: int, ngf: int, ndf: int, device: str) -> float:
    model = build_model(model_args(model_name, size, "plain", ngf, ndf, device))
    data = synthetic_batch(size, batch)
    counter = FlopCounterMode(display=False)
    with counter:
        train_step(model, data, device)
    return float(counter.get_total_flops())


def training_plan(args) -> list:
    """(model, size, batch, configurations, iterations) of every training case to measure."""
    if args.full_plan:
        plan = [(m, s, b, without_emulated_bf16(configs, args), n)
                for m, s, b, configs, n in FULL_PLAN[args.device]]
        return [case for case in plan if case[3]]
    return [(m, s, b, args.configs, args.iters) for m in args.models for s in args.sizes for b in args.batch_sizes]


def time_training(model_name: str, size: int, batch: int, configs: List[str], iters: int,
                  args) -> Dict[str, dict]:
    """Per configuration: iteration times (wall and CPU), first iteration, taking turns."""
    models = {c: build_model(model_args(model_name, size, c, args.ngf, args.ndf, args.device)) for c in configs}
    data = synthetic_batch(size, batch)
    results = {c: {"wall": [], "cpu": []} for c in configs}
    for c in configs:  # the first iteration: oneDNN primitives, cuDNN autotuning, compilation
        t = time.perf_counter()
        train_step(models[c], data, args.device)
        results[c]["first"] = time.perf_counter() - t
    for _ in range(args.warmup - 1):
        for c in configs:
            train_step(models[c], data, args.device)
    for i in range(iters):
        for c in configs[i % len(configs):] + configs[:i % len(configs)]:  # rotate the order
            t, tc = time.perf_counter(), time.process_time()
            train_step(models[c], data, args.device)
            results[c]["wall"].append(time.perf_counter() - t)
            results[c]["cpu"].append(time.process_time() - tc)
    return results


def probe_memory(spec: dict) -> dict:
    """Run in a fresh process: build one configuration, two steps, report the peak memory."""
    torch.set_num_threads(spec["threads"])
    device = spec["device"]
    model = build_model(spec["args"])
    data = synthetic_batch(spec["size"], spec["batch"])
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
        train_step(model, data, device)
    if device == "cuda":
        return {"peak_bytes": torch.cuda.max_memory_allocated(), "kind": "max_memory_allocated"}
    return {"peak_bytes": peak_rss_bytes(), "kind": "peak RSS"}


def peak_rss_bytes() -> int:
    """This process's peak resident set. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    from the forked parent (the benchmark, holding every model) into the exec'd child."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(ln for ln in status if ln.startswith("VmHWM:")).split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_in_subprocess(model_name: str, size: int, batch: int, config: str, args) -> Optional[float]:
    spec = {"args": model_args(model_name, size, config, args.ngf, args.ndf, args.device), "size": size,
            "batch": batch, "device": args.device, "threads": torch.get_num_threads()}
    proc = subprocess.run([sys.executable, __file__, "--probe_memory", json.dumps(spec)],
                          capture_output=True, text=True, cwd=REPO)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"  memory probe of {config} failed: {proc.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])["peak_bytes"] / 2**30


# ----------------------------------------------------------------------------- test.py and train.py loops
class StepClock:
    """Wraps a model's set_input / step function to record when each image starts (test.py)."""

    def __init__(self, model, step_name: str, device: str) -> None:
        self.starts: List[float] = []
        set_input, step = model.set_input, getattr(model, step_name)

        def timed_set_input(data):
            self.starts.append(time.perf_counter())
            set_input(data)

        def timed_step():
            step()
            sync(device)

        model.set_input = timed_set_input
        setattr(model, step_name, timed_step)


@contextlib.contextmanager
def clocked(module, step_name: str, device: str, sink: list):
    """Patch test.py's ``create_model`` so that every model it makes gets a StepClock."""
    original = module.create_model

    def create(opt):
        model = original(opt)
        sink.append((model, StepClock(model, step_name, device)))
        return model

    module.create_model = create
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        module.create_model = original


def save_random_weights(model_name: str, size: int, args, folder: Path) -> None:
    from options import save_options

    model = build_model(model_args(model_name, size, "plain", args.ngf, args.ndf, args.device)
                        + ["--checkpoints_dir", str(folder), "--name", "bench"])
    model.save_networks("latest")
    save_options(model.opt, folder / "bench")


def has_flag(flag: str, is_train: bool) -> bool:
    from options.base_options import build_parser

    return flag in build_parser(is_train, ["--model", "pix2pix"])._option_string_actions


def test_flags(argv: List[str]) -> List[str]:
    """``argv`` without the training-only flags (the Adam implementation)."""
    out = []
    for flag in argv:
        if out and out[-1] == "--adam_impl":
            out.pop()
        else:
            out.append(flag)
    return out


def time_test(model_name: str, size: int, dataroot: str, phase: str, args) -> Dict[str, dict]:
    import test as test_script

    configs = [c for c in TEST_CONFIGS[args.device] if c in args.test_configs]
    work = Path(tempfile.mkdtemp(prefix="bench_test_"))
    save_random_weights(model_name, size, args, work)
    results = {c: {"intervals": []} for c in configs}
    for _ in range(args.test_rounds):
        for c in configs:
            models = []
            argv = test_flags(model_args(model_name, size, c, args.ngf, args.ndf, args.device)[2:]) + [
                "--dataroot", dataroot, "--phase", phase, "--name", "bench", "--checkpoints_dir", str(work),
                "--results_dir", str(work / "results"), "--num_test", str(args.test_images)]
            if model_name == "cycle_gan":
                argv += ["--dataset_mode", "unaligned"]
            if has_flag("--metrics", is_train=False):
                argv += ["--metrics", "none"]  # the reference's test loop: translate and save, no scoring
            with clocked(test_script, "test", args.device, models):
                code = test_script.main(argv)
            if code != 0 or not models:  # e.g. --compile without a C++ compiler: the others still run
                results[c]["error"] = f"test.py exited with {code}"
                print(f"  test.py {c} failed with exit code {code}", file=sys.stderr, flush=True)
                continue
            starts = models[-1][1].starts
            intervals = [b - a for a, b in zip(starts, starts[1:])]
            results[c]["intervals"] += intervals[1:] if len(intervals) > 1 else intervals  # the first warms up
            if intervals:  # the first image of a run: oneDNN set-up, and compilation with --compile
                results[c].setdefault("first_s", []).append(intervals[0])
    for c in configs:
        ivals = results[c]["intervals"]
        results[c]["images_per_s"] = 1.0 / statistics.median(ivals) if ivals else None
    return results


def loop_clock(device: str, bare_batch: dict):
    """A training hook that times train.py's loop: when each step starts, how long the step
    itself takes, and the epoch-end work (validation, schedule, checkpoint). After every
    real step it runs one bare step on ``bare_batch``, timed apart and left out of the
    loop's intervals: loop and bare step are then measured in alternation, under the same load."""
    from engine import Hook

    class LoopClock(Hook):
        def __init__(self) -> None:
            self.starts: List[float] = []
            self.in_loop: List[float] = []
            self.bare: List[float] = []
            self.excluded: List[float] = []  # per iteration: time of the bare step run inside it
            self.epoch_end: List[float] = []
            self._last_step = 0.0

        def before_step(self, trainer) -> None:
            self.starts.append(time.perf_counter())
            self.excluded.append(0.0)

        def after_step(self, trainer) -> None:
            sync(device)
            self.in_loop.append(time.perf_counter() - self.starts[-1])
            t = time.perf_counter()
            trainer.model.train_step(bare_batch)
            sync(device)
            self.bare.append(time.perf_counter() - t)
            self.excluded[-1] = self.bare[-1]
            self._last_step = time.perf_counter()

        def after_epoch(self, trainer) -> None:  # the hooks before this one did the epoch's end
            self.epoch_end.append(time.perf_counter() - self._last_step)

        def intervals(self, skip: int = 0) -> List[float]:
            """Loop time of each iteration (start to next start), bare steps left out."""
            starts, excluded = self.starts[skip:], self.excluded[skip:]
            return [b - a - x for a, b, x in zip(starts, starts[1:], excluded)]

    return LoopClock()


def time_overhead(dataroot: str, size: int, configs: List[str], iters: int, args) -> Dict[str, dict]:
    """train.py's loop per iteration vs. the bare step of the same model (pix2pix), taking
    turns: after every real step of the loop, one bare step on a synthetic batch."""
    import train as train_script

    with contextlib.suppress(ImportError):  # the loss plot's one-time import is start-up, not per-iteration cost
        import matplotlib.pyplot  # noqa: F401
    results = {}
    train_dir = Path(dataroot, "train")
    epoch_size = len([f for f in train_dir.iterdir() if f.is_file()]) if train_dir.is_dir() else iters
    for c in configs:
        work = Path(tempfile.mkdtemp(prefix="bench_train_"))
        argv = model_args("pix2pix", size, c.replace("+cache", ""), args.ngf, args.ndf, args.device)[2:] + [
            "--dataroot", dataroot, "--name", "bench", "--checkpoints_dir", str(work), "--load_size",
            str(size + size // 8), "--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", str(iters),
            "--seed", "0"] + (["--cache_images"] if c.endswith("+cache") else [])
        clock = loop_clock(args.device, synthetic_batch(size, 1))
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = train_script.main(argv, hooks=[clock])
        if code != 0 or not clock.starts:
            raise RuntimeError(f"train.py {' '.join(argv)} failed with exit code {code}")
        skip = min(3, len(clock.starts) // 4)  # warm-up: oneDNN primitives, worker start
        loop, in_loop, bare = clock.intervals(skip), clock.in_loop[skip:-1], clock.bare[skip:]
        loop_mean, bare_mean = statistics.mean(loop), statistics.mean(bare)
        results[c] = {"loop_s": loop_mean, "in_loop_step_s": statistics.mean(in_loop), "bare_step_s": bare_mean,
                      "overhead_pct": 100 * (loop_mean / bare_mean - 1),
                      "overhead_in_loop_pct": 100 * (loop_mean / statistics.mean(in_loop) - 1),
                      "iterations": len(loop), "loop": loop, "bare": bare,
                      # The end-of-epoch checkpoint, spread over an epoch of the whole training set.
                      "epoch_save_s": sum(clock.epoch_end), "epoch_iterations": epoch_size,
                      "epoch_save_pct": 100 * sum(clock.epoch_end) / (epoch_size * loop_mean)}
    return results


# ----------------------------------------------------------------------------- report
def fmt_s(values: List[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})" if values else "n/a"


def compute_dtype(config: str, device: str) -> str:
    flags = CONFIGS[config].split()
    amp = resolve_amp(flags[flags.index("--amp") + 1], torch.device(device)) if "--amp" in flags else "none"
    return {"none": "fp32"}.get(amp, amp)


def training_table(cases: List[dict], peak: dict, device: str, threads: int = 1) -> str:
    lines = ["| model | size | batch | config | s / iter, median (min-max) | speed-up vs plain | first iter s "
             "| CPU s / iter | speed-up vs plain in CPU time | GFLOP / iter | GFLOP/s | % of matmul peak, wall (CPU time) "
             "| peak memory GiB |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in (c for c in cases if "results" in c):
        plain = case["results"].get("plain")
        # CPU time stays honest on a shared machine, where wall time also counts waiting for a core.
        base, base_cpu = (statistics.median(plain["wall"]), statistics.median(plain["cpu"])) if plain else (None, None)
        for c, r in case["results"].items():
            med, cpu = statistics.median(r["wall"]), statistics.median(r["cpu"])
            rate = case["flops"] / med / 1e9
            ref = peak.get(f"matmul_{compute_dtype(c, device)}")
            mem = r.get("peak_memory_gib")
            speedup, speedup_cpu = (f"{base / med:.2f}x", f"{base_cpu / cpu:.2f}x") if plain else ("n/a", "n/a")
            # CPU time adds up the threads: per thread, the step ran at rate_cpu.
            rate_cpu = case["flops"] / (cpu / threads) / 1e9 if device == "cpu" and cpu > 0 else None
            share = (f"{100 * rate / ref:.0f}%" + (f" ({100 * rate_cpu / ref:.0f}%)" if rate_cpu else "")
                     if ref else "n/a")
            lines.append(f"| {case['model']} | {case['size']} | {case['batch']} | {c} | {fmt_s(r['wall'])} | "
                         f"{speedup} | {r['first']:.1f} | {cpu:.3f} | {speedup_cpu} | "
                         f"{case['flops'] / 1e9:.1f} | {rate:.1f} | {share} | {f'{mem:.2f}' if mem else 'n/a'} |")
    return "\n".join(lines)


def report(out: dict) -> str:
    m = out["machine"]
    parts = [f"machine: {m.get('cpu', '')} ({m['cpus']} CPUs, {out['args']['device']}), torch CPU capability "
             f"{m['cpu_capability']}, native bf16 on the CPU: {'yes' if m['cpu_bf16'] else 'no'}; torch "
             f"{m['torch']}, {m['threads']} threads; load average at start {m['load_average']}, at end "
             f"{out.get('load_average_end', 'n/a')}"]
    if out["args"].get("skipped_bf16"):
        parts.append(f"bf16 configurations skipped: {out['args']['skipped_bf16']}")
    if out.get("peak"):
        parts.append("\n| dense throughput | GFLOP/s |\n|---|---|\n" + "\n".join(
            f"| {k} | {v:.1f} |" for k, v in out["peak"].items()))
    if out.get("training"):
        parts.append("\n" + training_table(out["training"], out.get("peak", {}), out["args"]["device"],
                                            out["machine"]["threads"]))
    for t in out.get("test", []):
        base = t["results"].get("plain", {}).get("images_per_s")
        parts.append(f"\ntest.py, {t['model']} at {t['size']}: images / s (median of "
                     f"{sum(len(r['intervals']) for r in t['results'].values())} loop iterations)\n\n"
                     "| config | images / s | vs plain | first image s (set-up, compilation) |\n|---|---|---|---|\n"
                     + "\n".join(
                         f"| {c} | {r['images_per_s']:.2f} | {r['images_per_s'] / base:.2f}x | "
                         f"{statistics.median(r.get('first_s') or [float('nan')]):.1f} |"
                         for c, r in t["results"].items() if r["images_per_s"] and base))
    if out.get("overhead"):
        parts.append("\ntrain.py loop vs bare step, taking turns (pix2pix; mean s / iteration)\n\n"
                     "| config | loop | step inside the loop | bare step | overhead vs bare | vs step in loop "
                     "| epoch-end save s | save over one epoch |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(
                         f"| {c} | {r['loop_s']:.3f} | {r['in_loop_step_s']:.3f} | {r['bare_step_s']:.3f} | "
                         f"{r['overhead_pct']:+.1f}% | {r['overhead_in_loop_pct']:+.1f}% | {r['epoch_save_s']:.1f} | "
                         f"{r['epoch_save_pct']:.1f}% of {r['epoch_iterations']} iterations |"
                         for c, r in out["overhead"]["results"].items()))
    return "\n".join(parts)


# ----------------------------------------------------------------------------- main
def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few iterations and configurations (minutes on 2 cores)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--models", default=None, help="comma-separated (default: pix2pix,cycle_gan)")
    p.add_argument("--sizes", default=None, help="comma-separated crop sizes (default 256,128; quick: 128)")
    p.add_argument("--batch_sizes", default=None, help="comma-separated (default 1,4; quick: 1)")
    p.add_argument("--configs", default=None, help=f"comma-separated, from: {', '.join(CONFIGS)}")
    p.add_argument("--iters", type=int, default=None,
                   help="measured iterations per configuration (default: per case, 2 to 5; quick 3)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up iterations per configuration (at least 1)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--ngf", type=int, default=64, help="generator width (64: the papers; smaller for smoke runs)")
    p.add_argument("--ndf", type=int, default=64, help="discriminator width")
    p.add_argument("--dataroot", default=str(REPO.parent / "shared" / "datasets" / "maps"),
                   help="aligned dataset for the test.py and train.py loops (a synthetic one when missing)")
    p.add_argument("--test_images", type=int, default=None, help="images per test.py run (default 20; quick 8)")
    p.add_argument("--test_rounds", type=int, default=None, help="test.py runs per configuration (default 3; quick 1)")
    p.add_argument("--test_configs", default=None, help="comma-separated (default: plain, default, bf16/fp16, ...)")
    p.add_argument("--overhead_iters", type=int, default=None, help="train.py iterations (default 120; quick 20)")
    p.add_argument("--overhead_configs", default=None,
                   help="comma-separated configurations, '+cache' adds --cache_images (default: default,auto+cache)")
    p.add_argument("--emulated_bf16", action="store_true",
                   help="keep the bf16 configurations where the device has no native bf16 (skipped by default: "
                        "emulated bf16 trains many times slower than fp32, an hour of benchmark on AVX2 CPUs)")
    p.add_argument("--no_machine", action="store_true")
    p.add_argument("--no_training", action="store_true")
    p.add_argument("--no_memory", action="store_true")
    p.add_argument("--no_test", action="store_true")
    p.add_argument("--no_overhead", action="store_true")
    p.add_argument("--json", default="benchmark.json", help="where to write the raw results")
    p.add_argument("--markdown", default=None, help="also write the tables to this file")
    p.add_argument("--report", default=None, help="print the tables of an earlier run's JSON, and exit")
    p.add_argument("--probe_memory", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    q = args.quick
    # The full plan unless the cases are narrowed on the command line.
    args.full_plan = not q and not (args.sizes or args.batch_sizes or args.configs or args.models)
    args.sizes = [int(s) for s in (args.sizes or ("128" if q else "256,128")).split(",")]
    args.batch_sizes = [int(b) for b in (args.batch_sizes or ("1" if q else "1,4")).split(",")]
    args.models = (args.models or "pix2pix,cycle_gan").split(",")
    # Emulated bf16 is left out of the default lists (configurations named on the command line run).
    args.skipped_bf16 = None
    if not args.emulated_bf16 and not native_bf16_here(torch.device(args.device)):
        args.skipped_bf16 = (f"this {args.device} ({cpu_capability_here() if args.device == 'cpu' else 'GPU'}) has "
                             "no native bf16; --emulated_bf16 or --configs keep them")
    args.configs = (args.configs.split(",") if args.configs
                    else without_emulated_bf16((QUICK if q else FULL)[args.device], args))
    args.test_configs = (args.test_configs.split(",") if args.test_configs
                         else without_emulated_bf16(TEST_CONFIGS[args.device], args))
    args.overhead_configs = args.overhead_configs.split(",") if args.overhead_configs else None
    for c in args.configs + args.test_configs + [c.replace("+cache", "") for c in args.overhead_configs or []]:
        if c not in CONFIGS:
            p.error(f"unknown configuration {c}; known: {', '.join(CONFIGS)}")
    if args.device == "cpu":
        args.configs = [c for c in args.configs if not c.startswith("fp16")]
    args.fixed_iters = args.iters
    args.iters = args.iters or (3 if q else 5)
    args.warmup = max(1, args.warmup)
    args.test_images = args.test_images or (8 if q else 20)
    args.test_rounds = args.test_rounds or (1 if q else 3)
    args.overhead_iters = args.overhead_iters or (20 if q else 120)
    return args


def demo_dataroot(size: int) -> str:
    sys.path.insert(0, str(REPO / "datasets"))
    from make_demo_data import make_demo_dataset

    root = Path(tempfile.mkdtemp(prefix="bench_data_"))
    return str(make_demo_dataset(root, "aligned", n_train=24, n_test=12, size=size, seed=0))


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--scale" in argv:  # how cost grows with files and processes: scripts/scale.py
        sys.path.insert(0, str(REPO / "scripts"))
        import scale

        return scale.main([a for a in argv if a != "--scale"])
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.probe_memory:
        print(json.dumps(probe_memory(json.loads(args.probe_memory))))
        return 0
    if args.report:
        print(report(json.loads(Path(args.report).read_text())))
        return 0
    out = {"args": {k: v for k, v in vars(args).items()}, "machine": machine_info(args.device)}
    m = out["machine"]
    print(f"# pix2cycle benchmark ({'quick' if args.quick else 'full'}) on {m['cpu']}, torch CPU capability "
          f"{m['cpu_capability']}, native bf16 {'yes' if m['cpu_bf16'] else 'no'}; load average {load_average()}",
          flush=True)
    if args.skipped_bf16:
        print(f"skipping bf16 configurations: {args.skipped_bf16}", flush=True)
    if not args.no_machine:
        out["peak"] = machine_peak(args.device, args.quick, emulated_bf16=bool(args.skipped_bf16))
        print("machine: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in out["peak"].items()), flush=True)
    out["training"] = []
    for model_name, size, batch, configs, iters in ([] if args.no_training else training_plan(args)):
        print(f"training {model_name} {size} batch {batch}: {', '.join(configs)} (load {load_average()})", flush=True)
        case = {"model": model_name, "size": size, "batch": batch, "load_before": load_average()}
        out["training"].append(case)
        try:
            case["flops"] = count_flops(model_name, size, batch, args.ngf, args.ndf, args.device)
            case["results"] = time_training(model_name, size, batch, configs, args.fixed_iters or iters, args)
            case["load_after"] = load_average()
            for c in ([] if args.no_memory else configs):
                if "compile" not in c:  # a fresh process would compile again, for the same peak as eager
                    case["results"][c]["peak_memory_gib"] = memory_in_subprocess(model_name, size, batch, c, args)
        except Exception as e:  # noqa: BLE001 - one failing case must not lose the others
            case["error"] = f"{type(e).__name__}: {e}"
            print(f"  failed: {case['error']}", file=sys.stderr, flush=True)
            continue
        finally:
            Path(args.json).write_text(json.dumps(out, indent=1))  # partial results survive a crash
        print(training_table([case], out.get("peak", {}), args.device, out["machine"]["threads"]), flush=True)
    have_maps = Path(args.dataroot, "val").is_dir() and Path(args.dataroot, "train").is_dir()
    size = args.sizes[0] if have_maps else min(args.sizes)
    dataroot = args.dataroot if have_maps else demo_dataroot(size)
    if not args.no_test and "pix2pix" in args.models:
        print(f"test.py pix2pix {size} (load {load_average()})", flush=True)
        out["test"] = [{"model": "pix2pix", "size": size, "dataroot": dataroot,
                        "results": time_test("pix2pix", size, dataroot, "val" if have_maps else "test", args)}]
    if not args.no_overhead:
        small = min(args.sizes)
        configs = args.overhead_configs or ["default", "auto+cache"]
        print(f"train.py loop overhead, pix2pix {small}: {', '.join(configs)} (load {load_average()})", flush=True)
        out["overhead"] = {"size": small, "dataroot": dataroot,
                           "results": time_overhead(dataroot, small, configs, args.overhead_iters, args)}
    out["load_average_end"] = load_average()
    text = report(out)
    print("\n" + text)
    Path(args.json).write_text(json.dumps(out, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    print(f"\nraw results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
