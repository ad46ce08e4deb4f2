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
stop. ``--preset seed_study`` runs the five experiments of docs/ablation.md, one page each.
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
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reporting.ablation_page import RunResult, write_study_page  # noqa: E402
from util.errors import UserError, report_user_error  # noqa: E402

DONE_FILE = "ablation_done.json"
Config = Dict[str, str]

# The pix2pix paper's study on maps (photo -> map), sized for 128 px on two CPU cores:
# unet_128 with ngf 32, 100 training pairs, 50 test pairs; each experiment varies one thing.
SEED_STUDY_FLAGS = ["--model", "pix2pix", "--netG", "unet_128", "--ngf", "32", "--ndf", "32",
                    "--load_size", "143", "--crop_size", "128", "--max_dataset_size", "100",
                    "--n_epochs", "1", "--n_epochs_decay", "1", "--num_threads", "2", "--gpu_ids", "-1",
                    "--seed", "0", "--no_html", "--print_freq", "50", "--save_epoch_freq", "100"]
SEED_STUDY: Dict[str, List[Config]] = {
    "epochs": [{"n_epochs": str(n), "n_epochs_decay": str(n)} for n in (1, 2, 4)],
    "batch_size": [{"batch_size": str(b)} for b in (1, 4, 16)],
    "patch_size": [{"netD": "n_layers", "n_layers_D": "1"}, {"netD": "basic"},
                   {"netD": "n_layers", "n_layers_D": "5"}],
    "objective": [{"lambda_GAN": "0"}, {"lambda_L1": "0"}, {}],
    "norm": [{"norm": "batch"}, {"norm": "instance"}],
    "attention": [{"attention": "down"}, {"attention": "up"}],
}
# preset -> (train.py flags, experiments, test images)
PRESETS = {"seed_study": (SEED_STUDY_FLAGS, SEED_STUDY, 50)}


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


def flag_value(argv: Sequence[str], flag: str) -> Optional[str]:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def call(script: str, argv: List[str], in_process: bool) -> int:
    """``script``'s ``main(argv)``: in this process (one job), or as a child process."""
    if in_process:
        module = __import__(script)
        return module.main(argv)
    return subprocess.run([sys.executable, str(REPO / f"{script}.py"), *argv], cwd=REPO).returncode


class Study:
    def __init__(self, name: str, base: List[str], configs: List[Config], checkpoints: Path,
                 results: Path, phase: str, metrics: str, jobs: int, num_test: Optional[int] = None) -> None:
        self.name, self.base, self.configs, self.jobs = name, base, configs, jobs
        self.checkpoints, self.results = checkpoints / name, results / name
        self.phase, self.metrics, self.num_test = phase, metrics, num_test

    def runs(self) -> List[RunResult]:
        return [RunResult(run_name(c), c, self.checkpoints / run_name(c),
                          self.results / "runs" / run_name(c) / f"{self.phase}_latest") for c in self.configs]

    def train_and_test(self, run: RunResult) -> None:
        in_process = self.jobs == 1
        if not (run.train_dir / DONE_FILE).is_file():
            argv = [*self.base, *config_flags(run.flags), "--name", run.label,
                    "--checkpoints_dir", str(self.checkpoints)]
            if (run.train_dir / "latest_checkpoint.pth").is_file():
                argv.append("--continue_train")  # stopped before: go on where it was
            print(f"[{self.name}] training {run.label}", flush=True)
            if call("train", argv, in_process) != 0:
                raise UserError(f"training {run.label} failed (see above); run the same command again to resume")
            (run.train_dir / DONE_FILE).write_text(json.dumps({"flags": run.flags}))
        if not (run.test_dir / "metrics.json").is_file():
            argv = ["--dataroot", flag_value(self.base, "--dataroot"), "--name", run.label,
                    "--checkpoints_dir", str(self.checkpoints), "--results_dir", str(self.results / "runs"),
                    "--phase", self.phase, "--metrics", self.metrics, "--gpu_ids", "-1", "--num_threads", "0",
                    *(["--model", flag_value(self.base, "--model")] if flag_value(self.base, "--model") else []),
                    *(["--num_test", str(self.num_test)] if self.num_test else [])]
            print(f"[{self.name}] testing {run.label} on {self.phase}", flush=True)
            if call("test", argv, in_process) != 0:
                raise UserError(f"testing {run.label} failed (see above)")

    def run(self) -> Path:
        runs = self.runs()
        if self.jobs == 1:
            for run in runs:
                self.train_and_test(run)
        else:
            with ThreadPoolExecutor(self.jobs) as pool:
                list(pool.map(self.train_and_test, runs))
        varied = list(dict.fromkeys(k for c in self.configs for k in c))
        page = write_study_page(self.results, f"Ablation study: {self.name}", runs, varied)
        print(f"[{self.name}] page: {page}")
        return page


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
    opt = parser.parse_args(ours)
    try:
        if opt.preset:
            base, experiments, num_test = PRESETS[opt.preset]
            opt.num_test = opt.num_test or num_test
            chosen = opt.experiments.split(",") if opt.experiments else list(experiments)
            unknown = [k for k in chosen if k not in experiments]
            if unknown:
                raise UserError(f"--experiments {','.join(unknown)}: {opt.preset} has {', '.join(experiments)}")
            studies = {f"{opt.name}_{k}": experiments[k] for k in chosen}
            base = [*base, *train_flags]
        else:
            studies, base = {opt.name: parse_grid(opt.grid)}, train_flags
        dataroot = flag_value(base, "--dataroot")
        if dataroot is None:
            raise UserError("give the training flags after --, with --dataroot (e.g. -- --dataroot ./datasets/maps)")
        phase = opt.phase or default_phase(dataroot)
        for name, configs in studies.items():
            Study(name, base, configs, Path(opt.checkpoints_dir), Path(opt.results_dir), phase, opt.metrics,
                  max(1, opt.jobs), opt.num_test).run()
        return 0
    except UserError as e:
        return report_user_error(e, False)


if __name__ == "__main__":
    sys.exit(main())
