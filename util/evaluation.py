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

    evaluator = Evaluator(model, parse_metric_names("psnr,ssim,fid"), weights_dir=None)
    for data, n in translated_batches(model, loader):
        rows = evaluator.update(model, data, n)      # per-image scores, for the gallery
    results = evaluator.compute()                    # {"psnr": {"mean", "std", "n"}, ...}

``Validator`` runs this during training (``--val_freq``) without disturbing the run: the
random streams, the networks' modes and buffers (batch-norm statistics) are restored.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch.utils.data import DataLoader, Dataset

from data import collate_skip_unreadable, create_dataset
from data.sampler import ResumableSampler, SampleIndex
from util.checkpoint import capture_rng_state, restore_rng_state
from util.errors import UserError
from util.html import Note
from util.metrics import METRICS, MetricSuite, describe_unavailable, parse_metric_names, summarize

BEST_FILE = "best.json"
METRICS_FILE = "metrics.json"
_SIDE = re.compile(r"^(.*)_([AB])$")
NO_TARGET = "this model has no real images of the target domain to compare with"
NO_PAIRS = "no ground-truth pairs (<x>_A ~ <x>_B files) in the data; see docs/metrics.md"


def make_suite(names: List[str], device: torch.device, weights_dir: Optional[str]) -> MetricSuite:
    """The one place suites are built (tests replace it to inject a small feature extractor)."""
    return MetricSuite(names, device=device, weights_dir=weights_dir)


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


def format_result(name: str, result: dict) -> Union[str, Note]:
    """A gallery cell: ``"23.41 ± 1.20"``, ``"84.2"`` or ``"n/a"`` with the reason on hover."""
    fmt = METRICS[base_name(name)].fmt if base_name(name) in METRICS else ".4g"
    if "unavailable" in result:
        return Note("n/a", result["unavailable"])
    if "value" in result:
        return f"{result['value']:{fmt}}"
    return f"{result['mean']:{fmt}} ± {result['std']:{fmt}}"


class Evaluator:
    """Scores a model's translations batch by batch; one ``MetricSuite`` per translation."""

    def __init__(self, model, names: List[str], weights_dir: Optional[str] = None) -> None:
        self.names = list(names)
        self.targets: Dict[str, Tuple[str, str]] = dict(getattr(model, "metric_visuals", {}) or {})
        self.suites: Dict[str, MetricSuite] = {}
        first: Optional[MetricSuite] = None
        for target in self.targets:
            if first is None:
                first = make_suite(self.names, model.device, weights_dir)
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
            seen_fakes, seen_reals = self._seen[target]
            paired, fake_only, real_only = [], [], []
            for i in range(n):
                new_fake = source_paths[i] is None or source_paths[i] not in seen_fakes
                new_real = target_paths[i] is None or target_paths[i] not in seen_reals
                seen_fakes.add(source_paths[i])
                seen_reals.add(target_paths[i])
                if new_fake and new_real and is_pair(source_paths[i], target_paths[i]):
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

    def summary_line(self, by_target: Optional[Dict[str, Dict[str, dict]]] = None) -> str:
        """One console line, per translation when there are two."""
        by_target = self.compute_by_target() if by_target is None else by_target
        if not by_target:
            return summarize(self.compute())
        if len(by_target) == 1:
            return summarize(next(iter(by_target.values())))
        return " ;  ".join(f"{'A' if t == 'B' else 'B'}->{t}: {summarize(r)}" for t, r in by_target.items())

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


# --------------------------------------------------------------------------- training
def eval_options(opt: argparse.Namespace, phase: str) -> argparse.Namespace:
    """Options for loading evaluation images: in order, no flip, scaled to crop_size as in test.py."""
    val_opt = argparse.Namespace(**vars(opt))
    val_opt.phase = phase
    val_opt.isTrain = False
    val_opt.serial_batches = True
    val_opt.no_flip = True
    val_opt.load_size = opt.crop_size
    val_opt.max_dataset_size = float("inf")  # --val_max limits validation, not the training cap
    return val_opt


def split_indices(n: int, fraction: float, seed: int) -> Tuple[List[int], List[int]]:
    """(kept, held out) indices, both sorted: ``round(fraction * n)`` held out, at least 1."""
    if n < 2:
        raise UserError(f"cannot hold out validation images from {n} training image(s); "
                        "add a validation folder (--val_phase) or more training images")
    k = min(n - 1, max(1, round(fraction * n)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[k:]), sorted(order[:k])


class HeldOut(Dataset):
    """The items ``indices`` of ``dataset``; sampler indices keep their seed and epoch."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], what: str) -> None:
        self.dataset, self.indices, self.what = dataset, list(indices), what

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        inner = self.indices[int(index)]
        if isinstance(index, SampleIndex):  # the per-sample random choices stay reproducible
            inner = SampleIndex(inner, index.seed, index.epoch)
        return self.dataset[inner]

    def describe(self) -> str:
        inner = self.dataset.describe() if hasattr(self.dataset, "describe") else type(self.dataset).__name__
        return f"{inner}; {self.what}"


def hold_out(train_set: Dataset, eval_set: Dataset, fraction: float, seed: int) -> Tuple[Dataset, Dataset, str]:
    """Split the training images: (training set, validation set, what was done).

    Unpaired data (``A_paths``/``B_paths``) is split per domain with the same permutation,
    so file pairs stay together; other datasets are split by item.
    """
    if all(hasattr(d, attr) for d in (train_set, eval_set) for attr in ("A_paths", "B_paths", "A_size", "B_size")):
        held = []
        for side in ("A", "B"):
            paths = getattr(train_set, f"{side}_paths")
            kept, taken = split_indices(len(paths), fraction, seed)
            for dataset, chosen in ((train_set, kept), (eval_set, taken)):
                setattr(dataset, f"{side}_paths", [paths[i] for i in chosen])
                setattr(dataset, f"{side}_size", len(chosen))
            held.append(f"{len(taken)} of {len(paths)} {side}")
        return train_set, eval_set, f"held out {' and '.join(held)} images for validation"
    if len(eval_set) != len(train_set):
        raise ValueError(f"the evaluation copy of the training set has {len(eval_set)} items, not {len(train_set)}")
    kept, taken = split_indices(len(train_set), fraction, seed)
    what = f"{len(taken)} of {len(train_set)} held out for validation"
    return HeldOut(train_set, kept, what), HeldOut(eval_set, taken, what), what


def setup_validation(opt: argparse.Namespace, train_set: Dataset,
                     save_dir: Path) -> Tuple[Dataset, Optional[Validator]]:
    """The training set to use and the ``Validator`` (None without ``--val_freq``).

    The validation images are ``<dataroot>/<val_phase>`` (``<val_phase>A/B`` for unpaired
    data); when there are none, ``--val_fraction`` of the training images are held out.
    """
    if opt.val_freq <= 0:
        return train_set, None
    names = parse_metric_names(opt.metrics)
    if not names:
        raise UserError("--val_freq needs metrics to compute; pass --val_metrics, e.g. psnr,ssim")
    if opt.best_metric and base_name(opt.best_metric) not in METRICS:
        raise UserError(f"unknown --best_metric '{opt.best_metric}'; choose from: {', '.join(METRICS)} "
                        "(with _A or _B for one direction of a two-way model)")
    if not 0.0 < opt.val_fraction < 1.0:
        raise UserError(f"--val_fraction must be between 0 and 1, got {opt.val_fraction}")
    rng = capture_rng_state()  # nothing here may shift the training run's random stream
    try:
        try:
            val_set = create_dataset(eval_options(opt, opt.val_phase))
            source = val_set.describe() if hasattr(val_set, "describe") else opt.val_phase
        except UserError as missing:
            seed = 0 if opt.seed is None else opt.seed
            same_images = eval_options(opt, opt.phase)
            same_images.max_dataset_size = opt.max_dataset_size  # item i is the training set's item i
            train_set, val_set, what = hold_out(train_set, create_dataset(same_images), opt.val_fraction, seed)
            source = f"no validation set ({missing}); {what} (--val_fraction {opt.val_fraction}, seed {seed})"
    finally:
        restore_rng_state(rng)
    return train_set, Validator(opt, val_set, names, source, save_dir)


class Validator:
    """Evaluates the model every ``--val_freq`` epochs and keeps the best weights.

    The best networks are saved as ``best_net_<name>.pth`` (``test.py --epoch best`` loads
    them) and described in ``best.json``, which ``--continue_train`` reads back.
    """

    def __init__(self, opt: argparse.Namespace, dataset: Dataset, names: List[str], source: str,
                 save_dir: Path) -> None:
        self.freq = opt.val_freq
        self.names = names
        self.limit = opt.val_max
        self.best_metric = opt.best_metric or names[0]
        self.weights_dir = opt.metrics_weights
        self.save_dir = Path(save_dir)
        self.source = source
        self.dataset = dataset
        seed = 0 if opt.seed is None else opt.seed
        # Its own loader: in order, a fixed (seed, epoch), so every evaluation sees the same images.
        self.loader = DataLoader(dataset, batch_size=opt.batch_size,
                                 sampler=ResumableSampler(len(dataset), shuffle=False, seed=seed),
                                 num_workers=int(opt.num_threads), collate_fn=collate_skip_unreadable,
                                 generator=torch.Generator().manual_seed(seed))
        self.evaluator: Optional[Evaluator] = None
        self.best: Optional[dict] = None
        self._noted: set = set()
        if opt.continue_train and (self.save_dir / BEST_FILE).is_file():
            try:
                self.best = json.loads((self.save_dir / BEST_FILE).read_text())
            except (OSError, ValueError):
                self.best = None

    def describe(self) -> str:
        count = len(self.dataset) if self.limit is None else min(self.limit, len(self.dataset))
        return (f"every {self.freq} epoch(s) on {count} image(s): {', '.join(self.names)}; best by "
                f"{self.best_metric} ({self.source})")

    def start(self, model) -> List[str]:
        """Build the metric networks for ``model``; returns the lines about unavailable metrics."""
        rng = capture_rng_state()
        try:
            self.evaluator = Evaluator(model, self.names, self.weights_dir)
        finally:
            restore_rng_state(rng)
        return [f"validation: {line} (skipped)" for line in describe_unavailable(self.evaluator.unavailable)]

    def due(self, epoch: int, last_epoch: int) -> bool:
        return epoch % self.freq == 0 or epoch == last_epoch

    def run(self, model, epoch: int, total_iters: int, visualizer) -> Dict[str, dict]:
        """Evaluate, log the figures with the losses and keep the best weights."""
        if self.evaluator is None:
            self.start(model)
        assert self.evaluator is not None
        nets = {name: NetworkState(net) for name, net in model.networks().items()}
        rng = capture_rng_state()
        try:
            by_target = evaluate(model, self.loader, self.evaluator, self.limit)
        finally:
            for saved in nets.values():
                saved.restore()
            restore_rng_state(rng)
        results = self.evaluator.flatten(by_target)
        figures = {name: headline(r) for name, r in results.items() if headline(r) is not None}
        for line in describe_unavailable(self.evaluator.later_unavailable(results)):
            self._note(f"validation: {line}")
        if figures:
            visualizer.log_metrics(epoch, total_iters, figures)
        self._keep_best(model, results, epoch, total_iters)
        return results

    def _note(self, line: str) -> None:
        if line not in self._noted:
            self._noted.add(line)
            print(line)

    def value_of(self, results: Dict[str, dict], name: str) -> Optional[float]:
        """``name``'s figure; a plain name on a two-way model is the mean of both directions."""
        if name in results:
            return headline(results[name])
        values = [headline(r) for n, r in results.items() if base_name(n) == name and n != name]
        values = [v for v in values if v is not None]
        return math.fsum(values) / len(values) if values else None

    def _keep_best(self, model, results: Dict[str, dict], epoch: int, total_iters: int) -> None:
        metric = self.best_metric
        value = self.value_of(results, metric)
        if value is None:
            fallback = next((n for n in results if headline(results[n]) is not None), None)
            if fallback is None:
                self._note("validation: no metric could be computed; best weights are not tracked")
                return
            self._note(f"validation: --best_metric {metric} is not available; best weights are chosen "
                       f"by {fallback}")
            metric, value = fallback, headline(results[fallback])
        higher = METRICS[base_name(metric)].higher_is_better
        best = self.best if self.best is not None and self.best.get("metric") == metric else None
        if best is not None and not (value > best["value"] if higher else value < best["value"]):
            return
        model.save_networks("best")
        self.best = {"metric": metric, "value": value, "higher_is_better": higher, "epoch": epoch,
                     "total_iters": total_iters,
                     "files": [f"best_net_{name}.pth" for name in model.model_names],
                     "results": results}
        write_json_atomic(self.save_dir / BEST_FILE, self.best)
        print(f"validation: best {metric} so far ({value:.4g}) at epoch {epoch}; saved best_net_*.pth")


class NetworkState:
    """A network's mode and buffers (batch-norm statistics), to put back after evaluating."""

    def __init__(self, net: torch.nn.Module) -> None:
        self.net = net
        self.modes = [(m, m.training) for m in net.modules()]
        self.buffers = [(b, b.detach().clone()) for b in net.buffers()]

    def restore(self) -> None:
        with torch.no_grad():
            for buffer, saved in self.buffers:
                buffer.copy_(saved)
        for module, training in self.modes:
            module.training = training
