"""Flags used only for training."""

from __future__ import annotations

import argparse


def continue_train_value(value: str) -> str:
    """``--continue_train`` takes no value, or ``auto``."""
    if value != "auto":
        raise argparse.ArgumentTypeError(f"the only value is auto (resume if there is a checkpoint), not {value!r}")
    return value


def preempt_signal_value(value: str) -> str:
    """A signal name (``USR1``, ``SIGUSR2``), a number, or ``none``."""
    from util.signal_names import parse_preempt_signal

    try:
        parse_preempt_signal(value)
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(f"not a signal: {value!r} (e.g. SIGUSR1, USR2, 10, or none)") from None
    return value


def add_train_options(parser: argparse.ArgumentParser) -> None:
    from models.losses import GAN_MODES
    from models.schedulers import SCHEDULERS

    g = parser.add_argument_group("training")
    g.add_argument("--phase", default="train", help="train, val, test, etc")
    g.add_argument("--n_epochs", type=int, default=100, help="# of epochs with the initial learning rate")
    g.add_argument("--n_epochs_decay", type=int, default=100, help="# of epochs to linearly decay the rate to zero")
    g.add_argument("--epoch_count", type=int, default=1, help="the starting epoch count")
    g.add_argument("--continue_train", nargs="?", const=True, default=False, type=continue_train_value,
                   metavar="auto",
                   help="continue training: load the latest checkpoint (--epoch); --continue_train auto: resume "
                        "when the run folder holds one, else start a new run (for job scripts and torchrun "
                        "--max-restarts, which start the same command again)")
    g.add_argument("--overwrite", action="store_true",
                   help="start anew in a run folder that holds a trained run: the old run is moved aside to "
                        "<name>.old-<time>, not deleted (without it, such a folder is an error)")
    g.add_argument("--beta1", type=float, default=0.5, help="momentum term of adam")
    g.add_argument("--lr", type=float, default=0.0002, help="initial learning rate for adam")
    g.add_argument("--lr_D", type=float, default=None,
                   help="initial learning rate of the discriminator(s) (default: --lr; e.g. 4x --lr for "
                        "two time-scale updates, Heusel et al. 2017); the schedule scales both alike")
    g.add_argument("--beta2", type=float, default=0.999, help="second-moment decay of adam")
    g.add_argument("--lr_warmup_iters", type=int, default=0,
                   help="ramp the rate linearly over the first N weight updates (1/N, 2/N, ... of what "
                        "--lr_policy gives); 0: no warm-up")
    g.add_argument("--grad_accum_steps", type=int, default=1,
                   help="update the weights every K batches with their mean gradient: an effective batch "
                        "of batch_size x K x processes (batch norm and the image pool still see batch_size; "
                        "see the README)")
    g.add_argument("--grad_accum_mode", default="interleaved", choices=["interleaved", "exact"],
                   help="with --grad_accum_steps K: interleaved = each batch's D and G steps in turn, D stepping at "
                        "the K-th (G's adversarial gradient of the first K-1 batches comes from D before its "
                        "update); exact = D over the K batches, D's step, then G over them again against the "
                        "updated D (StudioGAN's order: K x b is a batch of K*b; G's forward runs twice)")
    g.add_argument("--max_grad_norm", type=float, default=0.0,
                   help="clip each optimizer's gradients to this total 2-norm (unscaled first under fp16); 0: off")
    g.add_argument("--ema_decay", type=float, default=0.0,
                   help="keep an exponential moving average of the generator weights with this decay (e.g. "
                        "0.999), saved as <epoch>_net_G_ema.pth; test.py --use_ema runs it; 0: off")
    g.add_argument("--ema_rampup", type=float, default=0.05,
                   help="ramp-up of --ema_decay (StyleGAN2-ADA's ema_rampup): the average's half-life is at most "
                        "this fraction of the updates done so far, so it forgets the initial weights; 0: the plain "
                        "decay from the first update")
    g.add_argument("--gan_mode", default="lsgan", choices=list(GAN_MODES),
                   help="the type of GAN objective")
    g.add_argument("--lambda_gp", type=float, default=10.0, help="weight of the gradient penalty (wgangp)")
    g.add_argument("--adam_impl", default="fused", choices=["fused", "foreach", "for_loop"],
                   help="Adam implementation: fused (one kernel per step; falls back to foreach where unsupported), "
                        "foreach, or for_loop (what the reference runs on the CPU): the same update rule, rounded "
                        "differently by fused; for_loop with --conv_impl native is the reference's step bit for bit")
    g.add_argument("--pool_size", type=int, default=50, help="size of the buffer of previously generated images")
    g.add_argument("--lr_policy", default="linear", choices=list(SCHEDULERS),
                   help="learning rate policy")
    g.add_argument("--lr_decay_iters", type=int, default=50, help="multiply by a gamma every lr_decay_iters epochs")

    g = parser.add_argument_group("multi-GPU and multi-node (torchrun; see the README)")
    g.add_argument("--preempt_signal", default="SIGUSR1", type=preempt_signal_value,
                   help="the signal a scheduler sends before it stops or preempts the job (SLURM: --signal=B:USR1@120): "
                        "every process finishes its step, the run is saved and train.py exits with 128 + the "
                        "signal's number (138 for SIGUSR1) for the job script to requeue on; none: only Ctrl-C "
                        "and SIGTERM stop a run that way")
    g.add_argument("--dist_timeout", type=float, default=1800.0,
                   help="seconds a process waits for the others at a collective before the job ends with an error")

    g = parser.add_argument_group("logging and saving")
    g.add_argument("--display_freq", type=int, default=400, help="frequency of showing training results")
    g.add_argument("--update_html_freq", type=int, default=1000, help="frequency of saving results to the HTML page")
    g.add_argument("--print_freq", type=int, default=100, help="frequency of printing losses")
    g.add_argument("--no_html", action="store_true", help="do not save intermediate results to the web page")
    g.add_argument("--save_latest_freq", type=int, default=5000, help="frequency of saving the latest results")
    g.add_argument("--save_epoch_freq", type=int, default=5, help="save checkpoints every this many epochs")
    g.add_argument("--save_by_iter", action="store_true", help="also save models as iter_<N>")

    g = parser.add_argument_group("validation (see docs/metrics.md)")
    g.add_argument("--val_freq", type=int, default=0, help="evaluate every this many epochs (and at the end); 0: off")
    g.add_argument("--val_phase", default="val",
                   help="validation images: <dataroot>/<val_phase> (<val_phase>A/B for unpaired data)")
    g.add_argument("--val_fraction", type=float, default=0.1,
                   help="without a validation folder, hold out this fraction of the training images (at least 1)")
    g.add_argument("--val_max", type=int, default=None, help="at most this many validation images (default: all)")
    g.add_argument("--val_metrics", "--metrics", dest="metrics", default="none",
                   help="validation metrics, e.g. psnr,ssim, or none; those that cannot be computed are skipped "
                        "with one line (default of this --model: %(default)s)")
    g.add_argument("--best_metric", default="",
                   help="keep best_net_*.pth by the first of these metrics that can be computed (e.g. fid,psnr; "
                        "fid_B: one direction of a two-way model), else by the first of --val_metrics that can")
