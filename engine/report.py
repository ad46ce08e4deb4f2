"""What a person sees of a run: the summary at the start, loss lines and curves, the
training page, live displays, progress bars and the closing lines. Rank 0 only; losses
are averaged over all ranks first."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

from data.base_dataset import sample_unit
from engine.hooks import Hook
from engine.timing import TimingHook
from reporting.progress import Progress, summary_block
from reporting.visualizer import Visualizer
from util.hardware import describe_precision


def describe_batch(batch_size: int, processes: int, accum_steps: int) -> str:
    """``4``, ``4 per process x 2 processes = 8``, ``4 x 2 accumulated steps = 8 per update``."""
    parts = [f"{batch_size} per process" if processes > 1 else str(batch_size)]
    parts += [f"{processes} processes"] if processes > 1 else []
    parts += [f"{accum_steps} accumulated steps"] if accum_steps > 1 else []
    total = batch_size * processes * accum_steps
    return " x ".join(parts) + (f" = {total}" if len(parts) > 1 else "") + (" per update" if accum_steps > 1 else "")


class ReportHook(Hook):
    def __init__(self, opt, timing: TimingHook, validation: Optional[str] = None) -> None:
        self.opt, self.timing = opt, timing
        self.validation = validation  # the validator's description, or None
        self.visualizer: Optional[Visualizer] = None
        self.progress: Optional[Progress] = None
        self.epoch_start = time.time()

    def before_train(self, trainer) -> None:
        if not trainer.dist.is_main:
            return
        opt, model, state, dist = self.opt, trainer.model, trainer.state, trainer.dist
        self.visualizer = Visualizer(opt)
        counts = model.print_networks(opt.verbose)
        dataset = trainer.dataset
        device = (f"{model.device}" + ("" if model.device.type == "cuda" else
                                       " (no GPU in use: training on the CPU is slow)"))
        if dist.enabled:
            device += f"; {dist.world_size} processes (torchrun)"
        lines = {
            "device": device,
            "precision": describe_precision(opt.amp, opt.amp_resolved),
            "dataset": f"{len(dataset)} samples" + (f" ({dataset.describe()})" if hasattr(dataset, "describe") else ""),
            "networks": ", ".join(f"net{n} {c / 1e6:.2f} M" for n, c in counts.items()),
            "batch": describe_batch(opt.batch_size, dist.world_size if dist.enabled else 1,
                                    getattr(opt, "grad_accum_steps", 1)),
            "epochs": f"{state.epoch} .. {state.last_epoch}",
            "checkpoints": str(trainer_save_dir(opt)),
            "loss logs": f"{trainer_save_dir(opt) / 'loss_log.txt'} (and loss_log.jsonl)",
            "web page": "off" if opt.no_html else str(trainer_save_dir(opt) / "web" / "index.html"),
            "validation": self.validation or "off (--val_freq N to turn on)",
        }
        print(summary_block(lines))
        if opt.verbose:
            from util.saved_options import format_options

            print(format_options(opt))

    def before_epoch(self, trainer) -> None:
        self.epoch_start = time.time()
        if trainer.dist.is_main:
            state = trainer.state
            self.progress = Progress(total=len(trainer.dataset), desc=f"epoch {state.epoch}/{state.last_epoch}",
                                     initial=state.epoch_iter * trainer.dist.world_size,
                                     unit=sample_unit(trainer.dataset))

    def after_step(self, trainer) -> None:
        opt, state, model, dist = self.opt, trainer.state, trainer.model, trainer.dist
        n = state.batch_size
        printing = state.total_iters % opt.print_freq < n
        # Reading losses synchronises with the GPU: only when they are printed.
        losses = dist.mean(model.get_current_losses()) if printing else None
        if not dist.is_main:
            return
        # The page gets its entries every --update_html_freq images, whether or not that
        # falls on a --display_freq step (the reference needed both at once).
        save_result = not opt.no_html and state.total_iters % opt.update_html_freq < n
        if state.total_iters % opt.display_freq < n or save_result:
            model.compute_visuals()
            self.visualizer.display_current_results(model.get_current_visuals(), state.epoch, state.total_iters,
                                                    save_result)
        if printing:
            done = state.epoch_iter * dist.world_size  # samples of the epoch, all ranks
            self.visualizer.print_current_losses(state.epoch, done, losses, self.timing.t_step / max(n, 1),
                                                 self.timing.t_data, total_iters=state.total_iters,
                                                 epoch_frac=state.epoch + done / len(trainer.dataset))
            self.visualizer.plot_current_losses(state.epoch, done / len(trainer.dataset), losses,
                                                total_iters=state.total_iters)
        self.progress.update(n, losses)

    def after_epoch(self, trainer) -> None:
        if not trainer.dist.is_main:
            return
        state = trainer.state
        self.progress.close()
        print(f"End of epoch {state.epoch} / {state.last_epoch} \t Time Taken: {time.time() - self.epoch_start:.0f} "
              f"sec \t learning rate {state.lr:.7f}")

    def after_train(self, trainer) -> None:
        if not trainer.dist.is_main:
            return
        state = trainer.state
        print(f"training done: {state.total_iters} {sample_unit(trainer.dataset)} seen; weights in {trainer_save_dir(self.opt)}"
              + (f"; {state.skipped_total} unreadable image(s) skipped ({len(state.skipped_files)} file(s))"
                 if state.skipped_total else ""))

    def on_stop(self, trainer, signum: int) -> None:
        if self.progress is not None:
            self.progress.close()

    def close(self, trainer) -> None:
        if self.progress is not None:
            self.progress.close()
        if self.visualizer is not None:
            self.visualizer.close()
        sys.stdout.flush()


def trainer_save_dir(opt) -> Path:
    return Path(opt.checkpoints_dir) / opt.name
