"""Train an image-to-image translation model.

    python train.py --dataroot ./datasets/maps --name maps_cyclegan --model cycle_gan
    python train.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix --direction BtoA
    torchrun --nproc_per_node=2 train.py ...        # one process per GPU (or CPU), see the README

Every run writes to ``<checkpoints_dir>/<name>/``: the options (``train_opt.txt`` and
``train_opt.json``), the loss logs, the training web page, the reference's per-network
weight files (``latest_net_G.pth``, ``<epoch>_net_G.pth``) and a full checkpoint
(``latest_checkpoint.pth``) from which ``--continue_train`` resumes exactly where the run
stopped. The loop is ``engine.Trainer``; what happens around the steps is its hooks.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch

from data import create_dataloader, create_dataset, first_batch
from engine import Distributed, Hook, Trainer
from engine.checkpoints import CheckpointHook, ResumeHook
from engine.nan_guard import NanGuardHook
from engine.report import ReportHook
from engine.schedule import ScheduleHook
from engine.signals import SignalHook
from engine.timing import TimingHook
from engine.validation import ValidationHook, setup_validation
from models import MODELS, create_model
from options import parse_options
from util.errors import UserError, report_user_error, user_error_from_os_error
from util.run_folder import RunLock, check_new_run, resolve_continue_train
from util.util import seed_everything


def run(opt, dist: Distributed, extra_hooks: Sequence[Hook] = ()) -> int:
    seed_everything(opt.seed if dist.rank == 0 or opt.seed is None else opt.seed + dist.rank)
    dataset = create_dataset(opt)
    dataset, validator = setup_validation(opt, dataset, Path(opt.checkpoints_dir) / opt.name)
    drop_last = getattr(MODELS.get(opt.model), "drop_last_batch", False)  # CUT drops an epoch's short last batch
    loader = create_dataloader(opt, dataset, rank=dist.rank, world_size=dist.world_size, drop_last=drop_last)
    model = create_model(opt)
    if model.initializes_on_data():
        model.data_dependent_initialize(first_batch(dataset, opt.batch_size))
    model.setup(opt)
    if model.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed image sizes: let cuDNN time and keep its fastest kernels
    timing = TimingHook()
    report = ReportHook(opt, timing, validator.describe() if validator is not None else None)
    # Called in this order at every point: the NaN guard before anything is saved, validation
    # before the schedule (plateau follows it), the schedule before the end-of-epoch line and
    # the checkpoint (which saves the new rate), the signal check after the step's saves.
    hooks = [ResumeHook(opt), timing, NanGuardHook(),
             *([ValidationHook(validator, report)] if validator is not None else []),
             ScheduleHook(), report, CheckpointHook(opt), SignalHook(opt.preempt_signal), *extra_hooks]
    return Trainer(opt, model, dataset, loader, hooks, dist).train()


@contextlib.contextmanager
def claimed_run_folder(opt, dist: Distributed) -> Iterator[None]:
    """Rank 0 locks ``<checkpoints_dir>/<name>``, resolves ``--continue_train auto`` and applies
    the new-run rule (no silent overwrite of a trained run, see util/run_folder.py); every rank
    learns the outcome before any work, so an error ends all of them at once."""
    folder = Path(opt.checkpoints_dir) / opt.name
    lock, error, resume = RunLock(folder), None, False
    if dist.is_main:
        try:
            lock.acquire()
            aside = check_new_run(folder, opt.continue_train, opt.overwrite, opt.epoch)
            resume = resolve_continue_train(folder, opt.continue_train, opt.epoch)
            if opt.continue_train == "auto":
                print(f"--continue_train auto: {'resuming' if resume else 'no checkpoint yet; a new run in'} {folder}")
            if aside is not None:
                print(f"--overwrite: the old run of {folder} is now in {aside}")
        except OSError as e:
            error = str(user_error_from_os_error(e))
        except UserError as e:
            error = str(e)
        if error is not None:
            lock.release()
    error, opt.continue_train = dist.broadcast((error, resume))
    if error is not None:
        raise UserError(error)
    try:
        yield
    finally:
        lock.release()


def main(argv: Optional[Sequence[str]] = None, hooks: Sequence[Hook] = ()) -> int:
    """``train.py``'s command line; ``hooks`` are added to the run (tests, benchmarks)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    dist = Distributed()
    try:
        opt = parse_options(argv, is_train=True)
        opt.argv = argv
        dist = Distributed.from_environment(opt.dist_timeout, use_gpus=opt.gpu_ids != [])
        with claimed_run_folder(opt, dist):
            code = run(opt, dist, hooks)
        dist.barrier()  # every rank's last collective finished before the group is torn down
        return code
    except UserError as e:
        return report_user_error(e, verbose, dist.label)
    except OSError as e:  # the file system failed outside the checkpoint code (disk full, ...)
        return report_user_error(user_error_from_os_error(e), verbose, dist.label)
    finally:
        dist.close()


if __name__ == "__main__":
    sys.exit(main())
