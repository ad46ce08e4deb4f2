#!/usr/bin/env python
"""One command for an ablation study: train every configuration, test each, one page.

    python scripts/ablate.py --name norms --grid norm=batch,instance --grid lambda_L1=10,100 \\
        -- --dataroot ./datasets/facades --model pix2pix --n_epochs 5 --n_epochs_decay 5
    python scripts/ablate.py --preset seed_study --name seed -- --dataroot ../shared/datasets/maps

Every combination of the ``--grid`` values is one training run, under
``<checkpoints_dir>/<name>/<configuration>``, with the flags after ``--`` plus its own.
``KEY=true`` / ``KEY=false`` add or leave out a switch (``--no_dropout``). Each run is then
tested with ``test.py --metrics`` on ``--phase`` (default: val when the dataset has it, else
test), and ``<results_dir>/<name>/index.html`` shows the metrics of every configuration
(mean ± std over the images, the best marked), the loss curves of all runs in one figure,
and the same test images side by side. Finished runs and tests are skipped, an
interrupted run is resumed (``--continue_train``), so the command can be run again after a
stop. ``--nproc_per_node N`` trains each configuration under torchrun in N processes.

``--preset seed_study`` (two CPU cores, about an hour) and ``--preset seed_study_paper`` (a
GPU, the paper's sizes) run the experiments of docs/ablation.md; ``--preset faithful_study``
compares ``--grad_accum_mode interleaved/exact`` and ``--spectral_norm_D none/sngan/spade``: one page each,
``<results_dir>/<name>/<experiment>.html``, and an index of them. Their shared baseline is
trained once. Every study also writes its tables as Markdown, ``<results_dir>/<name>/results.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reporting.ablation_page import RunResult, write_index_page, write_markdown, write_study_page  # noqa: E402
from util.errors import UserError, report_user_error  # noqa: E402
from util.run_folder import RunLock  # noqa: E402

DONE_FILE = "ablation_done.json"

Config = Dict[str, str]
Entry = Tuple[str, Config]  # (label on the page, the flags that differ from the preset's)


class Preset(NamedTuple):
    """A study of several experiments that share one baseline run (flags: the baseline's)."""

    flags: List[str]
    experiments: Dict[str, List[Entry]]
    num_test: Optional[int] = None


def seed_study(device_flags: List[str], size: Tuple[str, str, str], ngf: str, pairs: str,
               baseline_epochs: int, other_epochs: Sequence[int], num_test: Optional[int] = None) -> Preset:
    """The pix2pix paper's study on maps (photo -> map): each experiment varies one thing of
    one baseline (U-Net, PatchGAN 70x70, L1 + cGAN, batch norm, batch 1), which is trained once
    and shown in every experiment. ``size``: (netG, load_size, crop_size)."""
    net, load, crop = size
    flags = ["--model", "pix2pix", "--netG", net, "--ngf", ngf, "--ndf", ngf, "--load_size", load,
             "--crop_size", crop, "--max_dataset_size", pairs, "--n_epochs", str(baseline_epochs),
             "--n_epochs_decay", str(baseline_epochs), "--seed", "0", "--no_html", "--print_freq", "100",
             "--save_epoch_freq", "1000", *device_flags]
    epochs = sorted({baseline_epochs, *other_epochs})
    base = " (baseline)"
    return Preset(flags, {
        "epochs": [(f"epochs {n}+{n}" + base, {}) if n == baseline_epochs else
                   (f"epochs {n}+{n}", {"n_epochs": str(n), "n_epochs_decay": str(n)}) for n in epochs],
        "batch_size": [("batch 1" + base, {}), ("batch 4", {"batch_size": "4"}),
                       ("batch 16", {"batch_size": "16"})],
        "patch_size": [("PatchGAN 16x16", {"netD": "n_layers", "n_layers_D": "1"}),
                       ("PatchGAN 70x70" + base, {}),
                       ("PatchGAN 286x286", {"netD": "n_layers", "n_layers_D": "5"})],
        "objective": [("L1 only", {"lambda_GAN": "0"}), ("cGAN only", {"lambda_L1": "0"}),
                      ("L1 + cGAN" + base, {})],
        "norm": [("batch norm" + base, {}), ("instance norm", {"norm": "instance"})],
        "attention": [("no attention" + base, {}), ("attention down (encoder)", {"attention": "down"}),
                      ("attention up (decoder gates)", {"attention": "up"})],
    }, num_test)


def faithful_study(device_flags: List[str], size: Tuple[str, str, str], ngf: str, pairs: str, epochs: int,
                   num_test: Optional[int] = None) -> Preset:
    """Issue 22's two comparisons on maps: the gradient accumulation forms (4 batches of 1, instance
    norm: --grad_accum_mode interleaved against exact, StudioGAN's order) and the spectral norm
    placements of the discriminator (none, SNGAN's every conv, SPADE's inner convs)."""
    net, load, crop = size
    flags = ["--model", "pix2pix", "--netG", net, "--ngf", ngf, "--ndf", ngf, "--load_size", load,
             "--crop_size", crop, "--max_dataset_size", pairs, "--n_epochs", str(epochs), "--n_epochs_decay",
             str(epochs), "--norm", "instance", "--grad_accum_steps", "4", "--seed", "0", "--no_html",
             "--print_freq", "100", "--save_epoch_freq", "1000", *device_flags]
    return Preset(flags, {
        "grad_accum_mode": [("interleaved (baseline)", {}), ("exact", {"grad_accum_mode": "exact"})],
        "spectral_norm_D": [("no spectral norm (baseline)", {}), ("SNGAN: every conv", {"spectral_norm_D": "sngan"}),
                            ("SPADE: inner convs", {"spectral_norm_D": "spade"})],
    }, num_test)


PRESETS = {
    # Two CPU cores, well within an hour: unet_128 (ngf 32) at 128 px, the first 400 training
    # pairs (all of ../shared/datasets/maps), 1 + 1 epochs for the baseline (800 steps), every
    # run tested on the first 100 val pairs.
    "seed_study": seed_study(["--gpu_ids", "-1", "--num_threads", "2"], ("unet_128", "143", "128"), "32",
                             "400", 1, (2, 4), num_test=100),
    # Accumulation forms and spectral norm placements (4 runs), sized like seed_study.
    "faithful_study": faithful_study(["--gpu_ids", "-1", "--num_threads", "2"], ("unet_128", "143", "128"), "32",
                                     "400", 1, num_test=100),
    # The paper's setting, for a GPU: unet_256 (ngf 64) at 256 px, 100 + 100 epochs.
    "seed_study_paper": seed_study(["--num_threads", "4"], ("unet_256", "286", "256"), "64", "inf", 100,
                                   (25, 50)),
}


def parse_grid(items: Sequence[str]) -> List[Config]:
    """``["a=1,2", "b=x,y"]`` -> every combination, as ``{"a": "1", "b": "x"}`` dicts."""
    keys, values = [], []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key or not text:
            raise UserError(f"--grid '{item}' must be KEY=V1,V2 (e.g. norm=batch,instance)")
        if key in keys:
            raise UserError(f"--grid {key} given twice; list all its values in one --grid")
        keys.append(key)
        values.append([v.strip() for v in text.split(",") if v.strip()])
        if not values[-1]:
            raise UserError(f"--grid '{item}' has no values (e.g. {key}=V1,V2)")
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)] if keys else [{}]


def run_name(config: Config) -> str:
    """A folder name for a configuration: ``norm-batch_lambda_L1-10`` (``default`` for none)."""
    text = "_".join(f"{k}-{v}" for k, v in config.items()) or "default"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)


def config_flags(config: Config) -> List[str]:
    flags: List[str] = []
    for key, value in config.items():
        if value.lower() == "true":
            flags.append(f"--{key}")
        elif value.lower() != "false":
            flags += [f"--{key}", value]
    return flags


def parse_flags(argv: Sequence[str]) -> Dict[str, str]:
    """``--flag value`` / ``--flag=value`` / ``--switch`` -> {flag: value ("" for a switch)};
    a flag given twice keeps its last value, as argparse does."""
    flags: Dict[str, str] = {}
    for i, arg in enumerate(argv):
        if not arg.startswith("--"):
            continue
        name, sep, value = arg.partition("=")
        if not sep:
            value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else ""
        flags[name] = value
    return flags


def flag_value(argv: Sequence[str], flag: str) -> Optional[str]:
    return parse_flags(argv).get(flag)


def changed_flags(then: Sequence[str], now: Sequence[str]) -> List[str]:
    """The flags whose values differ between two train.py command lines, as ``--flag a -> b``."""
    old, new = parse_flags(then), parse_flags(now)
    return [f"{k} {old.get(k, '(unset)') or '(on)'} -> {new.get(k, '(unset)') or '(on)'}"
            for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]


def call(script: str, argv: List[str], in_process: bool) -> int:
    """``script``'s ``main(argv)``: in this process (one job), or as a child process."""
    if in_process:
        module = __import__(script)
        return module.main(argv)
    return subprocess.run([sys.executable, str(REPO / f"{script}.py"), *argv], cwd=REPO).returncode


class Study:
    """Runs under ``checkpoints/<name>/<configuration>`` and ``results/<name>/runs/<configuration>``,
    so a configuration that two experiments share is trained and tested once."""

    def __init__(self, name: str, base: List[str], checkpoints: Path, results: Path, phase: str,
                 metrics: str, jobs: int = 1, num_test: Optional[int] = None, nproc: int = 1) -> None:
        self.name, self.base, self.jobs, self.nproc = name, base, jobs, nproc
        self.checkpoints, self.results = checkpoints / name, results / name
        self.phase, self.metrics, self.num_test = phase, metrics, num_test

    def runs(self, entries: Sequence[Entry]) -> List[RunResult]:
        return [RunResult(label, config, self.checkpoints / run_name(config),
                          self.results / "runs" / run_name(config) / f"{self.phase}_latest")
                for label, config in entries]

    def train_flags(self, run: RunResult) -> List[str]:
        """The train.py flags that make the run what it is (not where it is written)."""
        return [*self.base, *config_flags(run.flags)]

    def trained(self, run: RunResult) -> bool:
        """Whether the run finished, with the flags it has now (else an error: results would mix)."""
        done = run.train_dir / DONE_FILE
        if not done.is_file():
            return False
        then = json.loads(done.read_text()).get("train_flags")
        changed = changed_flags(then, self.train_flags(run)) if then is not None else []
        if changed:
            raise UserError(f"{run.train_dir} was trained with other flags ({'; '.join(changed[:4])}): give the "
                            "study another --name, or delete that folder to train it again")
        return True

    def train(self, run: RunResult) -> None:
        folder = run.train_dir.name
        argv = [*self.train_flags(run), "--name", folder, "--checkpoints_dir", str(self.checkpoints)]
        if (run.train_dir / "latest_checkpoint.pth").is_file():
            argv.append("--continue_train")  # stopped before: go on where it was
        print(f"[{self.name}] training {folder}" + (f" in {self.nproc} processes" if self.nproc > 1 else ""),
              flush=True)
        if self.nproc > 1:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                       f"--nproc_per_node={self.nproc}", str(REPO / "train.py"), *argv]
            code = subprocess.run(command, cwd=REPO).returncode
        else:
            code = call("train", argv, self.jobs == 1)
        if code != 0:
            raise UserError(f"training {folder} failed (see above); run the same command again to resume")
        (run.train_dir / DONE_FILE).write_text(json.dumps({"flags": run.flags, "train_flags": self.train_flags(run)}))

    def test(self, run: RunResult) -> None:
        folder = run.train_dir.name
        given = {flag: flag_value(self.base, flag) for flag in ("--model", "--gpu_ids")}  # else test.py's defaults
        argv = ["--dataroot", flag_value(self.base, "--dataroot"), "--name", folder,
                "--checkpoints_dir", str(self.checkpoints), "--results_dir", str(self.results / "runs"),
                "--phase", self.phase, "--metrics", self.metrics, "--num_threads", "0",
                *[x for flag, value in given.items() if value is not None for x in (flag, value)],
                *(["--num_test", str(self.num_test)] if self.num_test else [])]
        print(f"[{self.name}] testing {folder} on {self.phase}", flush=True)
        if call("test", argv, self.jobs == 1) != 0:
            raise UserError(f"testing {folder} failed (see above)")

    def train_and_test(self, run: RunResult) -> None:
        if not self.trained(run):
            self.train(run)
        if "per_image" not in (run.metrics_file() or {}):  # untested, or tested before per-image scores
            self.test(run)

    def run(self, experiments: Dict[str, List[Entry]], preset: bool = False) -> List[Path]:
        """Train and test every configuration once, then the pages in ``results/<name>``: ``index.html``
        for a grid; for a preset, ``<experiment>.html`` for each experiment and an ``index.html`` of them."""
        for experiment, entries in experiments.items():
            names = [run_name(c) for _, c in entries]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise UserError(f"{experiment}: configurations {', '.join(twice)} come out twice (the same "
                                "values, or values that differ only in characters a folder name cannot hold)")
        unique = {run.train_dir: run for entries in experiments.values() for run in self.runs(entries)}
        if self.jobs == 1:
            for run in unique.values():
                self.train_and_test(run)
        else:
            with ThreadPoolExecutor(self.jobs) as pool:
                list(pool.map(self.train_and_test, unique.values()))
        tables = {experiment: self.runs(entries) for experiment, entries in experiments.items()}
        pages = []
        for experiment, entries in experiments.items():
            varied = list(dict.fromkeys(k for _, c in entries for k in c))
            title = f"Ablation study: {self.name}" + (f", {experiment}" if preset else "")
            pages.append(write_study_page(self.results, title, tables[experiment], varied,
                                          page_name=experiment if preset else "index"))
            print(f"[{self.name}] page: {pages[-1]}")
        if preset:
            pages.insert(0, write_index_page(self.results, f"Ablation study: {self.name}", tables))
            print(f"[{self.name}] index: {pages[0]}")
        print(f"[{self.name}] tables (Markdown): {write_markdown(self.results, f'Ablation study: {self.name}', tables)}")
        return pages


def default_phase(dataroot: str) -> str:
    root = Path(dataroot)
    return "val" if (root / "val").is_dir() or (root / "valA").is_dir() else "test"


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, train_flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="the study's name: its folder in checkpoints and results")
    parser.add_argument("--grid", action="append", default=[], help="KEY=V1,V2: a train.py flag and its values")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a predefined set of experiments")
    parser.add_argument("--experiments", default=None, help="with --preset: only these, e.g. objective,norm")
    parser.add_argument("--checkpoints_dir", default="./checkpoints")
    parser.add_argument("--results_dir", default="./results")
    parser.add_argument("--phase", default=None, help="test phase (default: val if the dataset has it, else test)")
    parser.add_argument("--metrics", default="l1,psnr,ssim", help="test.py --metrics")
    parser.add_argument("--num_test", type=int, default=None, help="test on at most this many images")
    parser.add_argument("--jobs", type=int, default=1, help="configurations trained at once (child processes)")
    parser.add_argument("--nproc_per_node", type=int, default=1,
                        help="train each configuration under torchrun with this many processes (one per GPU)")
    opt = parser.parse_args(ours)
    try:
        if opt.preset and opt.grid:
            raise UserError("--grid and --preset: a preset brings its own configurations (add flags after --)")
        if opt.preset:
            preset = PRESETS[opt.preset]
            opt.num_test = opt.num_test or preset.num_test
            chosen = opt.experiments.split(",") if opt.experiments else list(preset.experiments)
            unknown = [k for k in chosen if k not in preset.experiments]
            if unknown:
                raise UserError(f"--experiments {','.join(unknown)}: {opt.preset} has "
                                f"{', '.join(preset.experiments)}")
            experiments = {k: preset.experiments[k] for k in chosen}
            base = [*preset.flags, *train_flags]
        else:
            experiments = {opt.name: [(run_name(c), c) for c in parse_grid(opt.grid)]}
            base = train_flags
        dataroot = flag_value(base, "--dataroot")
        if dataroot is None:
            raise UserError("give the training flags after --, with --dataroot (e.g. -- --dataroot ./datasets/maps)")
        if opt.nproc_per_node > 1 and opt.jobs > 1:
            raise UserError("--nproc_per_node and --jobs: use one of them (each torchrun run takes the machine)")
        # Every configuration's train.py flags are checked before anything is trained: one error line.
        from options import parse_options

        for config in [c for entries in experiments.values() for _, c in entries]:
            parse_options([*base, *config_flags(config), "--name", "check"], is_train=True)
        phase = opt.phase or default_phase(dataroot)
        study = Study(opt.name, base, Path(opt.checkpoints_dir), Path(opt.results_dir), phase, opt.metrics,
                      max(1, opt.jobs), opt.num_test, max(1, opt.nproc_per_node))
        # One study at a time in its folders: two would train the same runs and write the same pages.
        with RunLock(study.checkpoints, what="study"), RunLock(study.results, what="study", option="--results_dir"):
            study.run(experiments, preset=bool(opt.preset))
        return 0
    except UserError as e:
        return report_user_error(e, False)


if __name__ == "__main__":
    sys.exit(main())
