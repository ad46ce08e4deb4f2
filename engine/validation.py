"""Validation during training (``--val_freq``): the ``Validator`` and the hook that runs it.

The images are loaded and translated as ``test.py`` does by default (``eval_options``), and
scored by ``evaluation.evaluator``'s ``Evaluator``, so ``test.py --epoch best --seed S``
reproduces the figures in ``best.json``. Evaluating never disturbs training: the random
streams, the networks' modes and buffers (batch-norm statistics) are restored after it.
Under ``torchrun`` every rank evaluates the same images in the same order, with the plain
networks (no DDP wrapper, so DDP starts no collective), and rank 0 alone writes: a network
that runs a collective in its forward pass (SyncBatchNorm in training mode, as test.py runs
batch norm) finds every rank there, with the same image, so it computes what one process
would. The cost is no more time than rank 0 alone would take.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch.utils.data import DataLoader, Dataset

from data import collate_skip_unreadable, create_dataset
from data.base_dataset import sample_unit
from data.sampler import ResumableSampler, SampleIndex
from engine.hooks import Hook
from evaluation.evaluator import Evaluator, base_name, evaluate, headline, write_json_atomic
from evaluation.metrics import METRICS, parse_metric_names
from reporting.scores import describe_unavailable
from util.checkpoint import preserved_rng
from util.errors import UserError
from util.util import seed_everything

BEST_FILE = "best.json"

# What test.py does with the images unless told otherwise (options/: the --preprocess default,
# load_size = crop_size, one image per batch, in order, no flip).
TEST_PREPROCESS = "resize_and_crop"
TEST_BATCH_SIZE = 1


def eval_options(opt: argparse.Namespace, phase: str) -> argparse.Namespace:
    """Options for loading evaluation images as ``test.py`` loads them by default: in order,
    no flip, ``--preprocess resize_and_crop`` scaled to crop_size, one image per batch."""
    val_opt = argparse.Namespace(**vars(opt))
    val_opt.phase = phase
    val_opt.isTrain = False
    val_opt.serial_batches = True
    val_opt.no_flip = True
    val_opt.preprocess = TEST_PREPROCESS
    val_opt.load_size = opt.crop_size
    val_opt.batch_size = TEST_BATCH_SIZE
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

    @property
    def sample_unit(self) -> str:
        return sample_unit(self.dataset)

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
    from models import MODELS

    refusal = getattr(MODELS.get(opt.model), "refused_doors", {}).get("validation")
    if refusal is not None:
        raise UserError(f"--val_freq: {refusal}")
    names = parse_metric_names(opt.metrics)
    if not names:
        raise UserError("--val_freq needs metrics to compute; pass --val_metrics, e.g. psnr,ssim")
    for metric in best_metrics(opt.best_metric):
        if base_name(metric) not in METRICS:
            raise UserError(f"unknown --best_metric '{metric}'; choose from: {', '.join(METRICS)} "
                            "(with _A or _B for one direction of a two-way model)")
    if not 0.0 < opt.val_fraction < 1.0:
        raise UserError(f"--val_fraction must be between 0 and 1, got {opt.val_fraction}")
    with preserved_rng():  # nothing here may shift the training run's random stream
        try:
            val_set = create_dataset(eval_options(opt, opt.val_phase))
            source = val_set.describe() if hasattr(val_set, "describe") else opt.val_phase
        except UserError as missing:
            seed = 0 if opt.seed is None else opt.seed
            same_images = eval_options(opt, opt.phase)
            same_images.max_dataset_size = opt.max_dataset_size  # item i is the training set's item i
            train_set, val_set, what = hold_out(train_set, create_dataset(same_images), opt.val_fraction, seed)
            source = f"no validation set ({missing}); {what} (--val_fraction {opt.val_fraction}, seed {seed})"
    return train_set, Validator(opt, val_set, names, source, save_dir)


def best_metrics(spec: str) -> List[str]:
    """``--best_metric "fid, psnr"`` -> ``["fid", "psnr"]``: the order of preference."""
    return [m.strip() for m in (spec or "").split(",") if m.strip()]


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
        # The first of these that can be computed judges the weights; --val_metrics come last.
        self.preferred = best_metrics(opt.best_metric)
        self.candidates = self.preferred + [n for n in names if n not in self.preferred]
        self.best_metric = self.candidates[0]
        self.weights_dir = opt.metrics_weights
        self.download = opt.download_weights
        self.save_dir = Path(save_dir)
        self.source = source
        self.dataset = dataset
        seed = 0 if opt.seed is None else opt.seed
        self.seed = seed
        # Its own loader, batched as test.py batches (batch norm in training mode, as test.py
        # runs it, would otherwise mix images): in order, a fixed (seed, epoch), so every
        # evaluation sees the same images.
        self.loader = DataLoader(dataset, batch_size=TEST_BATCH_SIZE,
                                 sampler=ResumableSampler(len(dataset), shuffle=False, seed=seed),
                                 num_workers=int(opt.num_threads), collate_fn=collate_skip_unreadable,
                                 generator=torch.Generator().manual_seed(seed))
        self.evaluator: Optional[Evaluator] = None
        self.writes = True  # False on ranks other than 0: they evaluate but neither print nor save
        self.plateau = opt.lr_policy == "plateau"
        self.judged: Optional[Tuple[str, float, bool]] = None
        self.best: Optional[dict] = None
        self._noted: set = set()
        if opt.continue_train and (self.save_dir / BEST_FILE).is_file():
            try:
                self.best = json.loads((self.save_dir / BEST_FILE).read_text())
            except (OSError, ValueError):
                self.best = None

    def describe(self) -> str:
        count = len(self.dataset) if self.limit is None else min(self.limit, len(self.dataset))
        first, rest = self.candidates[0], self.candidates[1:]
        fallback = f" (else the first computed of {', '.join(rest)})" if rest else ""
        return (f"every {self.freq} epoch(s) on {count} image(s): {', '.join(self.names)}; best by "
                f"{first}{fallback} ({self.source})")

    def start(self, model) -> List[str]:
        """Build the metric networks for ``model``; returns the lines about unavailable metrics."""
        with preserved_rng():
            self.evaluator = Evaluator(model, self.names, self.weights_dir, self.download)
        return [f"validation: {line}" for line in describe_unavailable(self.evaluator.unavailable)]

    def due(self, epoch: int, last_epoch: int) -> bool:
        return epoch % self.freq == 0 or epoch == last_epoch

    def run(self, model, epoch: int, total_iters: int, visualizer) -> Dict[str, dict]:
        """Evaluate, log the figures with the losses and keep the best weights."""
        if self.evaluator is None:
            self.start(model)
        assert self.evaluator is not None
        nets = {name: NetworkState(net) for name, net in model.networks().items()}
        with preserved_rng():
            try:
                # The random stream of test.py --seed S just before its first image: dropout,
                # which stays on as in the reference's test.py, draws the same masks.
                seed_everything(self.seed)
                by_target = evaluate(model, self.loader, self.evaluator, self.limit)
            finally:
                for saved in nets.values():
                    saved.restore()
        results = self.evaluator.flatten(by_target)
        figures = {name: headline(r) for name, r in results.items() if headline(r) is not None}
        for line in describe_unavailable(self.evaluator.later_unavailable(results)):
            self._note(f"validation: {line}")
        if figures and visualizer is not None:
            visualizer.log_metrics(epoch, total_iters, figures)
        self.judged = self._keep_best(model, results, epoch, total_iters)
        return results

    def loss(self) -> Optional[float]:
        """The last judged figure as a loss (lower is better), for ``--lr_policy plateau``."""
        if self.judged is None:
            return None
        _, value, higher = self.judged
        return -value if higher else value

    def _note(self, line: str) -> None:
        if line not in self._noted:
            self._noted.add(line)
            if self.writes:
                print(line)

    def value_of(self, results: Dict[str, dict], name: str) -> Optional[float]:
        """``name``'s figure; a plain name on a two-way model is the mean of both directions."""
        if name in results:
            return headline(results[name])
        values = [headline(r) for n, r in results.items() if base_name(n) == name and n != name]
        values = [v for v in values if v is not None]
        return math.fsum(values) / len(values) if values else None

    def _keep_best(self, model, results: Dict[str, dict], epoch: int,
                   total_iters: int) -> Optional[Tuple[str, float, bool]]:
        """Save the best weights when ``results`` beat them; returns (metric, value, higher is
        better) of the figure judged, or None when no metric could be computed."""
        metric = next((m for m in self.candidates if self.value_of(results, m) is not None), None)
        if metric is None:
            if self.plateau:
                raise UserError(f"--lr_policy plateau follows a validation figure, and none of --val_metrics "
                                f"{','.join(self.names)} could be computed on {self.source}: "
                                f"{'; '.join(describe_unavailable(self.evaluator.later_unavailable(results)))}")
            self._note("validation: no metric could be computed; best weights are not tracked")
            return None
        value = self.value_of(results, metric)
        if metric != self.candidates[0]:
            passed = self.candidates[:self.candidates.index(metric)]
            self._note(f"validation: best weights are chosen by {metric} (not computed: {', '.join(passed)})")
        higher = METRICS[base_name(metric)].higher_is_better
        judged = (metric, value, higher)
        best = self.best if self.best is not None and self.best.get("metric") == metric else None
        if best is not None and not (value > best["value"] if higher else value < best["value"]):
            return judged
        self.best = {"metric": metric, "value": value, "higher_is_better": higher, "epoch": epoch,
                     "total_iters": total_iters, "seed": self.seed,
                     "files": [f"best_net_{name}.pth" for name in model.model_names],
                     "results": results}
        if self.writes:
            model.save_networks("best")
            write_json_atomic(self.save_dir / BEST_FILE, self.best)
            print(f"validation: best {metric} so far ({value:.4g}) at epoch {epoch}; saved best_net_*.pth")
        return judged


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


class ValidationHook(Hook):
    """Runs the ``Validator`` at the end of the epochs it is due (on every rank, rank 0
    writing; see the module docstring), before the schedule steps: ``--lr_policy plateau``
    follows the judged figure."""

    def __init__(self, validator: Validator, reporter) -> None:
        self.validator, self.reporter = validator, reporter

    def before_train(self, trainer) -> None:
        self.validator.writes = trainer.dist.is_main
        for line in self.validator.start(trainer.model):
            if trainer.dist.is_main:
                print(line)

    def after_epoch(self, trainer) -> None:
        state, model = trainer.state, trainer.model
        if not self.validator.due(state.epoch, state.last_epoch):
            return
        with model.plain_networks():  # no DDP: no gradient or buffer sync outside the step
            self.validator.run(model, state.epoch, state.total_iters,
                               self.reporter.visualizer if trainer.dist.is_main else None)
        # The same figures on every rank; rank 0's, so that plateau steps alike everywhere.
        model.metric = trainer.dist.broadcast(self.validator.loss())
