"""Checkpoints: resume at the start, the latest and per-epoch saves, and the save on a stop.

A full checkpoint (``<tag>_checkpoint.pth``) holds everything a run needs to go on:
weights, optimizers, schedulers, image pools, random states, the data order and the
position in the epoch, the options. Beside it go the reference's per-network files
(``<tag>_net_G.pth``), which other tools and the reference read.

Under ``torchrun`` rank 0 writes; every rank's random state and model extras (its image
pools) are gathered into the file, so a run resumed with the same number of processes
continues each rank exactly. With another number of processes, weights, optimizers and the
schedule carry over; the position in the epoch is recomputed from the samples done; rank r
takes the random state and pools of rank r where the checkpoint has one, and a rank it does
not have starts empty pools and a random stream of its own (derived from rank r modulo the
old world size and r, so no two ranks share one).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import torch

from data.base_dataset import sample_unit
from data.sampler import derived_seed
from engine.hooks import Hook
from models.model_state import checkpoint_path
from util.checkpoint import (
    atomic_link,
    atomic_save,
    capture_rng_state,
    remove_stale_temp_files,
    restore_rng_state,
    safe_load,
)
from util.errors import UserError
from util.saved_options import save_options
from util.util import seed_everything
from util.weights import safetensors_path

CHECKPOINT_FORMAT = "pix2cycle-checkpoint-v1"
SCHEDULE_KEYS = ("n_epochs", "n_epochs_decay", "lr", "lr_policy", "lr_decay_iters")


def load_resume_state(opt, save_dir: Path) -> Optional[dict]:
    """The full checkpoint that ``--continue_train`` resumes from, or None (weights only)."""
    path = checkpoint_path(save_dir, opt.epoch)
    if not path.is_file():
        return None
    state = safe_load(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a pix2cycle training checkpoint")
    saved_model = state["options"].get("model")
    if saved_model is not None and saved_model != opt.model:
        raise UserError(f"{path} was written by --model {saved_model}, not --model {opt.model}; "
                        f"resume with --model {saved_model}, or train this model under another --name")
    # The learning-rate schedule depends on the epoch the original run started at.
    opt.epoch_count = state["options"].get("epoch_count", opt.epoch_count)
    state["path"] = path
    return state


def schedule_line(opt, saved: dict, lr: float, epoch: int) -> str:
    """One line: the schedule options that differ from the checkpoint's, and the rate used now."""
    changed = [f"--{k} {saved[k]} -> {getattr(opt, k)}" for k in SCHEDULE_KEYS
               if k in saved and saved[k] != getattr(opt, k)]
    what = f"schedule options changed ({', '.join(changed)}); " if changed else ""
    return (f"{what}learning rate {lr:.7g} at epoch {epoch} of {opt.n_epochs + opt.n_epochs_decay} "
            f"(--lr_policy {opt.lr_policy})")


def resume_argv(argv) -> list:
    """``argv`` as a command that resumes: with ``--continue_train`` (``auto`` kept: it resumes too)."""
    if "--continue_train=auto" in argv or any(a == "--continue_train" and b == "auto" for a, b in zip(argv, argv[1:])):
        return list(argv)
    return [a for a in argv if a != "--continue_train"] + ["--continue_train"]


class CheckpointHook(Hook):
    """Writes checkpoints (rank 0; the others wait): every ``--save_latest_freq`` images,
    at the end of every epoch, and when the run is stopped."""

    def __init__(self, opt) -> None:
        self.opt = opt
        self.save_dir = Path(opt.checkpoints_dir) / opt.name

    def after_step(self, trainer) -> None:
        state = trainer.state
        if state.total_iters % self.opt.save_latest_freq < state.batch_size:
            tags = ("latest", f"iter_{state.total_iters}") if self.opt.save_by_iter else ("latest",)
            self.save(trainer, state.epoch, state.epoch_iter, tags)

    def after_epoch(self, trainer) -> None:
        epoch = trainer.state.epoch
        tags = ["latest"]
        if epoch % self.opt.save_epoch_freq == 0 or epoch == trainer.state.last_epoch:
            tags.append(str(epoch))
        self.save(trainer, epoch + 1, 0, tags)  # training goes on at the start of the next epoch

    def on_stop(self, trainer, signum: int) -> None:
        state = trainer.state
        self.save(trainer, state.epoch, state.epoch_iter)
        if trainer.dist.is_main:
            argv = resume_argv(self.opt.argv)
            script = sys.argv[0] if sys.argv[0].endswith("train.py") else "train.py"
            launcher = "torchrun ... " if trainer.dist.enabled else "python "
            print(f"\nstopped by signal {signum}; saved {checkpoint_path(self.save_dir)}.\n"
                  f"resume with: {launcher}{shlex.join([script] + argv)}", file=sys.stderr)

    # ------------------------------------------------------------------ saving
    def save(self, trainer, epoch: int, epoch_iter: int, tags=("latest",)) -> None:
        """Write the full state and the per-network files for each tag; ``epoch`` and
        ``epoch_iter`` say where training goes on (the epoch, and its samples done)."""
        model, dist = trainer.model, trainer.dist
        per_rank = dist.gather({"rng": capture_rng_state(), "extra": model.extra_state()})
        if dist.is_main:
            state = {
                "format": CHECKPOINT_FORMAT,
                "model": model.training_state(),
                "epoch": epoch,
                "epoch_iter": epoch_iter,
                "total_iters": trainer.state.total_iters,
                "world_size": dist.world_size,
                "rng": per_rank[0]["rng"],
                "sampler": trainer.sampler.state_dict(),
                "options": {k: v for k, v in vars(self.opt).items()
                            if isinstance(v, (str, int, float, bool, type(None)))},
            }
            if dist.enabled:
                state["ranks"] = per_rank
            first, *more = tags
            model.save_networks(first)
            atomic_save(state, checkpoint_path(self.save_dir, first))
            for tag in more:  # the same bytes under more names: hard links, not a second write
                for name in model.weight_file_names():
                    src, dst = model.network_file(first, name), model.network_file(tag, name)
                    atomic_link(src, dst)
                    atomic_link(safetensors_path(src), safetensors_path(dst))
                atomic_link(checkpoint_path(self.save_dir, first), checkpoint_path(self.save_dir, tag))
        dist.barrier()



class ResumeHook(Hook):
    """First of all hooks: readies the checkpoint folder, restores a ``--continue_train``
    run into ``trainer.state`` and records the options."""

    def __init__(self, opt) -> None:
        self.opt = opt
        self.save_dir = Path(opt.checkpoints_dir) / opt.name

    def before_train(self, trainer) -> None:
        if trainer.dist.is_main:
            for name in remove_stale_temp_files(self.save_dir):
                print(f"removed {self.save_dir / name}, left by a save that was interrupted")
        if self.opt.continue_train:
            self.resume(trainer)
        if trainer.dist.is_main:
            save_options(self.opt, self.save_dir)

    def resume(self, trainer) -> None:
        opt, model, dist, state = self.opt, trainer.model, trainer.dist, trainer.state
        saved = load_resume_state(opt, self.save_dir)
        if saved is None:  # weights only (a reference run, or files copied by hand)
            suffix = f"iter_{opt.load_iter}" if opt.load_iter > 0 else opt.epoch
            model.load_networks(suffix)
            model.follow_schedule(opt.epoch_count)
            state.epoch = opt.epoch_count
            if dist.is_main:
                print(f"no full checkpoint at {checkpoint_path(self.save_dir, opt.epoch)}; loaded {suffix}_net_*.pth "
                      f"weights and starting at epoch {opt.epoch_count} (optimizer state starts afresh)")
            return
        old_world = int(saved.get("world_size", 1))
        ranks = saved.get("ranks") or [{"rng": saved["rng"], "extra": saved["model"].get("extra", {})}]
        new_rank = dist.rank >= len(ranks)  # more processes than wrote the checkpoint
        mine = ranks[dist.rank % len(ranks)]
        # This rank's image pools (rank 0's are the ones in saved["model"]); a process the
        # checkpoint did not have starts with empty pools, as a new run does.
        model.load_training_state({**saved["model"], "extra": {} if new_rank else mine["extra"]},
                                  source=saved["path"], saved_options=saved["options"])
        restore_rng_state(mine["rng"])
        if new_rank:  # a stream of its own: drawn from rank (r mod old) and hashed with r
            seed_everything(derived_seed(int(torch.randint(2**62, (1,))), dist.rank))
        trainer.sampler.load_state_dict(saved["sampler"])
        state.epoch, state.total_iters = saved["epoch"], saved["total_iters"]
        # The epoch's order is shared by all ranks; each took every world_size-th sample.
        state.epoch_iter = saved["epoch_iter"] * old_world // dist.world_size
        lr = model.follow_schedule(saved["epoch"])
        if dist.is_main:
            print(f"resuming from {saved['path']}: epoch {saved['epoch']}, iteration {saved['epoch_iter']} "
                  f"of the epoch, {saved['total_iters']} {sample_unit(trainer.dataset)} seen")
            if old_world != dist.world_size:
                more = (f"; processes {len(ranks)} and up start empty image pools and random streams of their "
                        f"own" if dist.world_size > len(ranks) else "")
                print(f"the checkpoint was written by {old_world} process(es), this run has {dist.world_size}: "
                      f"weights, optimizers and the schedule carry over; the position in the epoch is "
                      f"recomputed ({saved['epoch_iter'] * old_world} samples done, {state.epoch_iter} per "
                      f"process), and process r takes the random state and image pools of process r"
                      + (f" (r < {len(ranks)})" if dist.world_size > len(ranks) else "") + more)
            print(schedule_line(opt, saved["options"], lr, saved["epoch"]))
