"""Restarts and preemption in one process: ``--continue_train auto`` and the preemption signal.

The same command started again (a requeued job, torchrun ``--max-restarts``) resumes where a
SIGUSR1 stopped it and ends with the weights of an uninterrupted run. The multi-process
versions (SIGKILL under torchrun, two rendezvous agents) are in test_distributed_restarts.py.
"""

import os
import signal

import pytest
import torch

import train as train_script
from engine import Hook
from engine.signals import PREEMPTED_EXIT_CODE
from tests.helpers import assert_same_networks

# pix2pix, 2 epochs x 4 images, a save every 3 images: small and exact on the CPU.
RUN = ["--model", "pix2pix", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "36",
       "--crop_size", "32", "--num_threads", "0", "--gpu_ids", "-1", "--display_id", "0", "--no_html",
       "--print_freq", "100000", "--display_freq", "100000", "--n_epochs", "1", "--n_epochs_decay", "1",
       "--max_dataset_size", "4", "--seed", "7", "--save_latest_freq", "3"]


class SignalAtStep(Hook):
    """Sends ``signum`` to this process while step ``k`` runs, as a scheduler would."""

    def __init__(self, k: int, signum: int) -> None:
        self.k, self.signum, self.steps = k, signum, 0

    def before_step(self, trainer) -> None:
        self.steps += 1
        if self.steps == self.k:
            os.kill(os.getpid(), self.signum)


def args(root, ckpt, name, *extra):
    return ["--dataroot", str(root), "--name", name, "--checkpoints_dir", str(ckpt), *RUN, *extra]


def test_sigusr1_saves_exits_for_requeue_and_auto_resumes_exactly(aligned_dataroot, tmp_path, capsys):
    assert train_script.main(args(aligned_dataroot, tmp_path, "one")) == 0
    job = args(aligned_dataroot, tmp_path, "job", "--continue_train", "auto")
    # First start: no checkpoint yet, a new run; SIGUSR1 during step 6 (epoch 2) stops it after that step.
    assert train_script.main(job, hooks=[SignalAtStep(6, signal.SIGUSR1)]) == PREEMPTED_EXIT_CODE == 138
    captured = capsys.readouterr()
    assert "no checkpoint yet" in captured.out
    assert "stopped by signal 10" in captured.err and "--continue_train auto" in captured.err
    state = torch.load(tmp_path / "job" / "latest_checkpoint.pth", weights_only=True)
    assert (state["epoch"], state["epoch_iter"], state["total_iters"]) == (2, 2, 6)
    # The requeued job runs the same command: it resumes and ends where the uninterrupted run did.
    assert train_script.main(job) == 0
    assert "--continue_train auto: resuming" in capsys.readouterr().out
    assert_same_networks(tmp_path / "one", tmp_path / "job", ["G", "D"])


def test_preempt_signal_is_configurable_and_bad_values_are_one_line_errors(aligned_dataroot, tmp_path, capsys):
    job = args(aligned_dataroot, tmp_path, "usr2", "--preempt_signal", "USR2", "--max_dataset_size", "2")
    assert train_script.main(job, hooks=[SignalAtStep(1, signal.SIGUSR2)]) == 128 + signal.SIGUSR2
    assert "stopped by signal 12" in capsys.readouterr().err
    for bad in (["--continue_train", "maybe"], ["--preempt_signal", "SIGNOPE"]):
        assert train_script.main(args(aligned_dataroot, tmp_path, "bad", *bad)) == 2
        err = capsys.readouterr().err
        assert "error" in err and "Traceback" not in err and bad[1] in err
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("given", ["auto", ""])
def test_auto_and_plain_continue_train_on_an_empty_folder(aligned_dataroot, tmp_path, capsys, given):
    """auto starts a run where there is nothing to resume; plain --continue_train keeps its meaning (an error)."""
    job = args(aligned_dataroot, tmp_path, "fresh", "--continue_train", *([given] if given else []),
               "--max_dataset_size", "1", "--n_epochs_decay", "0")
    assert train_script.main(job) == (0 if given else 2)
    assert (tmp_path / "fresh" / "latest_checkpoint.pth").is_file() == bool(given)
