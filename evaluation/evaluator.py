"""Scoring a model's translations: ``test.py --metrics`` and ``train.py --val_freq`` share this.

What is scored comes from the model: ``model.metric_visuals`` maps a target domain (the
batch key, "A" or "B") to (translated visual, real visual of that domain), e.g. pix2pix
``{"B": ("fake_B", "real_B")}``. A model with two translations (CycleGAN) gets its metric
names suffixed by the target domain: ``fid_B`` scores A -> B (fake_B against real B
images), ``fid_A`` scores B -> A.

Paired metrics (l1, psnr, ssim, lpips) need the ground truth of each translated image. A
batch item is a ground-truth pair when its two images come from the same file (aligned
data) or from files whose stems differ only in a final ``_A`` / ``_B`` (``401_A.jpg`` ~
``401_B.jpg``, as in an unaligned test set built from pairs). Files of the same name in
both folders are *not* taken as pairs: many unpaired datasets number their files. Each
image is counted once even when an unaligned loader repeats the smaller domain.

    evaluator = Evaluator(model, parse_metric_names("psnr,ssim,fid"), weights_dir=None, download=False)
    for data, n in translated_batches(model, loader):
        rows = evaluator.update(model, data, n)      # per-image scores, for the gallery
    results = evaluator.compute()                    # {"psnr": {"mean", "std", "n"}, ...}

``engine/validation.py`` runs this during training (``--val_freq``).
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import torch

from evaluation.metrics import METRICS, MetricSuite

METRICS_FILE = "metrics.json"
_SIDE = re.compile(r"^(.*)_([AB])$")
NO_TARGET = "this model has no real images of the target domain to compare with"
NO_PAIRS = "no ground-truth pairs (<x>_A ~ <x>_B files) in the data; see docs/metrics.md"


def make_suite(names: List[str], device: torch.device, weights_dir: Optional[str],
               download: bool = False) -> MetricSuite:
    """The one place suites are built (tests replace it to inject a small feature extractor)."""
    return MetricSuite(names, device=device, weights_dir=weights_dir, download=download)


def is_pair(path_a: Optional[str], path_b: Optional[str]) -> bool:
    """Whether two images are ground truth of each other; see the module docstring."""
    if not path_a or not path_b:
        return False
    if path_a == path_b:
        return True
    a, b = _SIDE.match(Path(path_a).stem), _SIDE.match(Path(path_b).stem)
    return bool(a and b and a.group(1) == b.group(1) and a.group(2) != b.group(2))


def base_name(name: str) -> str:
    """``"fid_B"`` -> ``"fid"``; a plain metric name is returned as is."""
    if name in METRICS:
        return name
    head, _, _ = name.rpartition("_")
    return head if head in METRICS else name


def headline(result: dict) -> Optional[float]:
    """The number a result is judged by: its value (FID) or mean; None when unavailable."""
    for key in ("value", "mean"):
        if key in result:
            return float(result[key])
    return None


class Evaluator:
    """Scores a model's translations batch by batch; one ``MetricSuite`` per translation."""

    def __init__(self, model, names: List[str], weights_dir: Optional[str] = None,
                 download: bool = False) -> None:
        self.names = list(names)
        self.targets: Dict[str, Tuple[str, str]] = dict(getattr(model, "metric_visuals", {}) or {})
        self.suites: Dict[str, MetricSuite] = {}
        first: Optional[MetricSuite] = None
        for target in self.targets:
            if first is None:
                first = make_suite(self.names, model.device, weights_dir, download)
                suite = first
            else:  # shares the pretrained networks (and their availability), not the scores
                suite = copy.copy(first)
                suite.reset()
            self.suites[target] = suite
        self.unavailable: Dict[str, str] = (dict(first.unavailable) if first is not None
                                            else {n: NO_TARGET for n in self.names})
        self.reset()

    def suffix(self, target: str) -> str:
        return f"_{target}" if len(self.targets) > 1 else ""

    def label(self, target: str) -> str:
        source = "A" if target == "B" else "B"
        fake, real = self.targets[target]
        return f"{source} -> {target}: {fake} vs {real} images"

    def reset(self) -> None:
        for suite in self.suites.values():
            suite.reset()
        self._seen = {t: (set(), set()) for t in self.targets}
        self.images = 0
        self.pairs = 0

    def update(self, model, data: dict, count: Optional[int] = None) -> List[Dict[str, float]]:
        """Score the first ``count`` items of ``data``, which ``model`` has just translated.

        Returns each item's paired scores (suffixed names), empty for items without a pair.
        """
        n = len(data["A"]) if count is None else count
        rows: List[Dict[str, float]] = [{} for _ in range(n)]
        self.images += n
        for target, (fake_name, real_name) in self.targets.items():
            suite, suffix = self.suites[target], self.suffix(target)
            fake, real = getattr(model, fake_name), getattr(model, real_name)
            source = "A" if target == "B" else "B"
            source_paths = data.get(f"{source}_paths") or [None] * n
            target_paths = data.get(f"{target}_paths") or [None] * n
            known_pairs = data.get("paired")  # datasets that pair files by their own rule say so
            seen_fakes, seen_reals = self._seen[target]
            paired, fake_only, real_only = [], [], []
            for i in range(n):
                new_fake = source_paths[i] is None or source_paths[i] not in seen_fakes
                new_real = target_paths[i] is None or target_paths[i] not in seen_reals
                seen_fakes.add(source_paths[i])
                seen_reals.add(target_paths[i])
                pair = bool(known_pairs[i]) if known_pairs is not None else is_pair(source_paths[i], target_paths[i])
                if new_fake and new_real and pair:
                    paired.append(i)
                    continue
                if new_fake:
                    fake_only.append(i)
                if new_real:
                    real_only.append(i)
            if target == next(iter(self.targets)):
                self.pairs += len(paired)
            if paired:
                index = torch.tensor(paired, device=fake.device)
                scores = suite.update(fake.index_select(0, index), real=real.index_select(0, index))
                for i, row in zip(paired, scores):
                    rows[i].update({name + suffix: value for name, value in row.items()})
            if fake_only:
                suite.update(fake.index_select(0, torch.tensor(fake_only, device=fake.device)))
            if real_only:
                suite.add_target_domain(real.index_select(0, torch.tensor(real_only, device=real.device)))
        return rows

    def compute_by_target(self) -> Dict[str, Dict[str, dict]]:
        """Results per translation (plain metric names)."""
        out = {}
        for target, suite in self.suites.items():
            results = suite.compute()
            for name, result in results.items():
                if ("unavailable" in result and METRICS[name].kind == "paired"
                        and name not in suite.unavailable and self.pairs == 0):
                    results[name] = {"unavailable": NO_PAIRS}
            out[target] = results
        return out

    def compute(self) -> Dict[str, dict]:
        """Results by (suffixed) metric name; unavailable ones are ``{"unavailable": reason}``."""
        return self.flatten(self.compute_by_target())

    def flatten(self, by_target: Dict[str, Dict[str, dict]]) -> Dict[str, dict]:
        """``compute_by_target()``'s results by suffixed name (``fid_B``, ``fid_A``)."""
        if not self.targets:
            return {name: {"unavailable": NO_TARGET} for name in self.names}
        return {name + self.suffix(target): result
                for target, results in by_target.items() for name, result in results.items()}

    def later_unavailable(self, results: Dict[str, dict]) -> Dict[str, str]:
        """Metrics that became unavailable while scoring (no pairs, too few images...)."""
        return {name: r["unavailable"] for name, r in results.items()
                if "unavailable" in r and base_name(name) not in self.unavailable}


def translated_batches(model, loader, limit: Optional[int] = None) -> Iterator[Tuple[dict, int]]:
    """Translate each batch (``model.test()``); yield (batch, how many of its items count).

    Batches whose images were all unreadable are passed over; at most ``limit`` items.
    """
    done = 0
    for data in loader:
        if limit is not None and done >= limit:
            break
        if "A" not in data:
            continue
        model.set_input(data)
        model.test()
        n = len(data["A"]) if limit is None else min(len(data["A"]), limit - done)
        done += n
        yield data, n


def evaluate(model, loader, evaluator: Evaluator, limit: Optional[int] = None) -> Dict[str, Dict[str, dict]]:
    """Score ``model`` on up to ``limit`` items of ``loader``; results per translation."""
    evaluator.reset()
    for data, n in translated_batches(model, loader, limit):
        evaluator.update(model, data, n)
    return evaluator.compute_by_target()


def write_json_atomic(path: Path, data: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
