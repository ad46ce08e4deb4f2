"""Train an image-to-image translation model.

    python train.py --dataroot ./datasets/maps --name maps_cyclegan --model cycle_gan
    python train.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix --direction BtoA

Every run writes to ``<checkpoints_dir>/<name>/``: the options (``train_opt.txt`` and
``train_opt.json``), the loss logs, the training web page, the reference's per-network
weight files (``latest_net_G.pth``, ``<epoch>_net_G.pth``) and a full checkpoint
(``latest_checkpoint.pth``) from which ``--continue_train`` resumes exactly where the run
stopped: weights, optimizers, schedulers, image pools, random states and data order.
With ``--val_freq N`` the model is evaluated every N epochs (util/evaluation.py) and the
best weights are kept as ``best_net_<name>.pth``, described in ``best.json``.
"""

from __future__ import annotations

import random
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from data import create_dataloader, create_dataset
from models import create_model
from models.base_model import checkpoint_path
from options import format_options, parse_options, save_options
from util.checkpoint import (
    atomic_link,
    atomic_save,
    capture_rng_state,
    ensure_writable_folder,
    remove_stale_temp_files,
    restore_rng_state,
    safe_load,
)
from util.errors import UserError, report_user_error, user_error_from_os_error
from util.evaluation import setup_validation
from util.hardware import describe_precision
from util.progress import Progress, summary_block
from util.visualizer import Visualizer

CHECKPOINT_FORMAT = "pix2cycle-checkpoint-v1"


class Stop(Exception):
    """Raised inside the loop when SIGINT/SIGTERM asked the run to stop."""


def seed_everything(seed: Optional[int]) -> None:
    if seed is None:
        return
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_checkpoint(model, opt, save_dir: Path, epoch: int, epoch_iter: int, total_iters: int,
                    sampler, tags=("latest",)) -> None:
    """Write the full training state and the reference's per-network files for each tag.

    ``epoch`` and ``epoch_iter`` say where training goes on: the epoch, and how many of
    its samples are already done.
    """
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": model.training_state(),
        "epoch": epoch,
        "epoch_iter": epoch_iter,
        "total_iters": total_iters,
        "rng": capture_rng_state(),
        "sampler": sampler.state_dict(),
        "options": {k: v for k, v in vars(opt).items() if isinstance(v, (str, int, float, bool, type(None)))},
    }
    first, *more = tags
    model.save_networks(first)
    atomic_save(state, checkpoint_path(save_dir, first))
    for tag in more:  # the same bytes under more names: hard links, not a second write
        for name in model.networks():
            atomic_link(model.network_file(first, name), model.network_file(tag, name))
        atomic_link(checkpoint_path(save_dir, first), checkpoint_path(save_dir, tag))


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


def resume(model, opt, state: Optional[dict], sampler):
    """Restore a ``--continue_train`` run; returns (epoch, epoch_iter, total_iters)."""
    if state is not None:
        model.load_training_state(state["model"], source=state["path"], saved_options=state["options"])
        restore_rng_state(state["rng"])
        sampler.load_state_dict(state["sampler"])
        print(f"resuming from {state['path']}: epoch {state['epoch']}, iteration {state['epoch_iter']} "
              f"of the epoch, {state['total_iters']} images seen")
        return state["epoch"], state["epoch_iter"], state["total_iters"]
    # Weights only (a reference run, or files copied by hand): restart at --epoch_count.
    suffix = f"iter_{opt.load_iter}" if opt.load_iter > 0 else opt.epoch
    model.load_networks(suffix)
    print(f"no full checkpoint at {checkpoint_path(Path(opt.checkpoints_dir) / opt.name, opt.epoch)}; loaded "
          f"{suffix}_net_*.pth weights and starting at epoch {opt.epoch_count} (optimizer state starts afresh)")
    return opt.epoch_count, 0, 0


def check_finite(model, total_iters: int) -> None:
    """Stop on a NaN or infinite loss, naming it, before anything is saved."""
    losses = {n: getattr(model, "loss_" + n) for n in model.loss_names}
    tensors = [v.detach().float().reshape(()) for v in losses.values() if isinstance(v, torch.Tensor)]
    if tensors and bool(torch.stack(tensors).isfinite().all()):
        return
    bad = [n for n, v in losses.items()
           if not np.isfinite(float(v.detach() if isinstance(v, torch.Tensor) else v))]
    if bad:
        raise UserError(f"loss {', '.join('loss_' + n for n in bad)} is not finite at iteration "
                        f"{total_iters}; stopped (the last saved checkpoint is intact). Try a lower "
                        f"--lr, another --gan_mode, or check the data")


def run(opt) -> int:
    seed_everything(opt.seed)
    save_dir = Path(opt.checkpoints_dir) / opt.name
    dataset = create_dataset(opt)
    dataset, validator = setup_validation(opt, dataset, save_dir)  # may hold out a validation slice
    ensure_writable_folder(save_dir)  # now, not as a failed save after the first epoch
    for name in remove_stale_temp_files(save_dir):
        print(f"removed {save_dir / name}, left by a save that was interrupted")
    loader = create_dataloader(opt, dataset)
    sampler = loader.sampler
    resume_state = load_resume_state(opt, save_dir) if opt.continue_train else None
    model = create_model(opt)
    model.setup(opt)
    if model.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed image sizes: let cuDNN time and keep its fastest kernels
    epoch, epoch_iter, total_iters = opt.epoch_count, 0, 0
    if opt.continue_train:
        epoch, epoch_iter, total_iters = resume(model, opt, resume_state, sampler)
        del resume_state
    save_options(opt, save_dir)
    visualizer = Visualizer(opt)
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    counts = model.print_networks(opt.verbose)
    print(summary_block({
        "device": f"{model.device}" + ("" if model.device.type == "cuda" else
                                       " (no GPU in use: training on the CPU is slow)"),
        "precision": describe_precision(opt.amp, opt.amp_resolved),
        "dataset": f"{len(dataset)} samples" + (f" ({dataset.describe()})" if hasattr(dataset, "describe") else ""),
        "networks": ", ".join(f"net{n} {c / 1e6:.2f} M" for n, c in counts.items()),
        "epochs": f"{epoch} .. {last_epoch}",
        "checkpoints": str(save_dir),
        "loss logs": f"{save_dir / 'loss_log.txt'} (and loss_log.jsonl)",
        "web page": "off" if opt.no_html else str(save_dir / "web" / "index.html"),
        "validation": validator.describe() if validator is not None else "off (--val_freq N to turn on)",
    }))
    if opt.verbose:
        print(format_options(opt))
    if validator is not None:
        for line in validator.start(model):
            print(line)

    stop_signal = []

    def request_stop(signum, frame):  # noqa: ARG001
        stop_signal.append(signum)

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    skipped_total, skipped_files = 0, set()
    try:
        while epoch <= last_epoch:
            epoch_start = time.time()
            sampler.set_epoch(epoch)
            sampler.set_start(epoch_iter)
            skipped = []
            progress = Progress(total=len(dataset), desc=f"epoch {epoch}/{last_epoch}", initial=epoch_iter)
            t_data_start = time.time()
            for data in loader:
                # epoch_iter is the position in the epoch's sample order, so that a resumed
                # run starts after the same samples; unreadable ones count as passed.
                skipped += data.get("skipped", [])
                epoch_iter += len(data.get("skipped", []))
                if "A" not in data:
                    continue
                t_data = time.time() - t_data_start
                t_step = time.time()
                batch_size = data["A"].size(0)
                total_iters += batch_size
                epoch_iter += batch_size
                model.set_input(data)
                model.optimize_parameters()
                check_finite(model, total_iters)
                # Reading losses synchronises with the GPU: only when they are printed.
                losses = model.get_current_losses() if total_iters % opt.print_freq < batch_size else None
                # The page gets its entries every --update_html_freq images, whether or not
                # that falls on a --display_freq step (the reference needed both at once).
                save_result = not opt.no_html and total_iters % opt.update_html_freq < batch_size
                if total_iters % opt.display_freq < batch_size or save_result:
                    model.compute_visuals()
                    visualizer.display_current_results(model.get_current_visuals(), epoch, total_iters, save_result)
                if total_iters % opt.print_freq < batch_size:
                    visualizer.print_current_losses(epoch, epoch_iter, losses, (time.time() - t_step) / batch_size,
                                                    t_data, total_iters=total_iters,
                                                    epoch_frac=epoch + epoch_iter / len(dataset))
                    visualizer.plot_current_losses(epoch, epoch_iter / len(dataset), losses, total_iters=total_iters)
                progress.update(batch_size, losses)
                if total_iters % opt.save_latest_freq < batch_size:
                    tags = ("latest", f"iter_{total_iters}") if opt.save_by_iter else ("latest",)
                    save_checkpoint(model, opt, save_dir, epoch, epoch_iter, total_iters, sampler, tags)
                if stop_signal:
                    raise Stop()
                t_data_start = time.time()
            progress.close()
            if skipped:
                skipped_total += len(skipped)
                skipped_files.update(skipped)
                print(f"epoch {epoch}: skipped {len(skipped)} unreadable image(s): {', '.join(skipped[:5])}"
                      + (" ..." if len(skipped) > 5 else ""), file=sys.stderr)
            if epoch_iter == 0 and not skipped:
                raise UserError("the data loader produced no batches")
            if skipped and epoch_iter == len(skipped):
                raise UserError(f"every image of epoch {epoch} was unreadable ({len(skipped)} skipped, e.g. "
                                f"{skipped[0]}); nothing to train on")
            lr = model.update_learning_rate()
            epoch_iter = 0
            epoch += 1
            if validator is not None and validator.due(epoch - 1, last_epoch):
                validator.run(model, epoch - 1, total_iters, visualizer)
            tags = ["latest"]
            if (epoch - 1) % opt.save_epoch_freq == 0 or epoch > last_epoch:
                tags.append(str(epoch - 1))
            save_checkpoint(model, opt, save_dir, epoch, 0, total_iters, sampler, tags)
            print(f"End of epoch {epoch - 1} / {last_epoch} \t Time Taken: {time.time() - epoch_start:.0f} sec"
                  f" \t learning rate {lr:.7f}")
            if stop_signal:
                raise Stop()
    except Stop:
        progress.close()
        save_checkpoint(model, opt, save_dir, epoch, epoch_iter, total_iters, sampler)
        command = shlex.join([sys.argv[0] if sys.argv[0].endswith("train.py") else "train.py"]
                             + [a for a in opt.argv if a != "--continue_train"] + ["--continue_train"])
        print(f"\nstopped by signal {stop_signal[0]}; saved {checkpoint_path(save_dir)}.\n"
              f"resume with: python {command}", file=sys.stderr)
        return 128 + stop_signal[0]
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        visualizer.close()
    print(f"training done: {total_iters} images seen; weights in {save_dir}"
          + (f"; {skipped_total} unreadable image(s) skipped ({len(skipped_files)} file(s))" if skipped_total
             else ""))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    try:
        opt = parse_options(argv, is_train=True)
        opt.argv = argv
        return run(opt)
    except UserError as e:
        return report_user_error(e, verbose)
    except OSError as e:  # the file system failed outside the checkpoint code (disk full, ...)
        return report_user_error(user_error_from_os_error(e), verbose)


if __name__ == "__main__":
    sys.exit(main())
