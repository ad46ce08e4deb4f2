"""Complete resume: a run stopped after k iterations and resumed ends where one uninterrupted run ends."""

import os
import signal

import pytest
import torch

import train as train_script
from engine import Hook
from tests.helpers import PAIRED, assert_same_networks, tiny_args


class SignalDuringStep(Hook):
    """Sends ``signum`` to this process while step ``k`` runs, as Ctrl-C would."""

    def __init__(self, k: int, signum: int = signal.SIGINT) -> None:
        self.k, self.signum, self.steps = k, signum, 0

    def before_step(self, trainer) -> None:
        self.steps += 1
        if self.steps == self.k:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("model_name", ["pix2pix", "cycle_gan"])
def test_stop_and_resume_equals_one_run(model_name, aligned_dataroot, unaligned_dataroot, tmp_path, monkeypatch,
                                        capsys):
    root = aligned_dataroot if model_name in PAIRED else unaligned_dataroot
    # 2 epochs x 4 images, the LR decaying in the second, a pool smaller than the run for cycle_gan.
    extra = ["--n_epochs", "1", "--n_epochs_decay", "1", "--max_dataset_size", "4", "--seed", "7",
             "--save_latest_freq", "3", *(["--pool_size", "2"] if model_name == "cycle_gan" else [])]
    one_go = tiny_args(model_name, root, tmp_path, "one", *extra)
    assert train_script.main(one_go) == 0

    interrupted = tiny_args(model_name, root, tmp_path, "two", *extra)
    assert train_script.main(interrupted, hooks=[SignalDuringStep(5)]) == 128 + signal.SIGINT  # in epoch 2
    err = capsys.readouterr().err
    assert "resume with: python" in err and "--continue_train" in err
    state = torch.load(tmp_path / "two" / "latest_checkpoint.pth", weights_only=True)
    assert (state["epoch"], state["epoch_iter"], state["total_iters"]) == (2, 1, 5)

    assert train_script.main(interrupted + ["--continue_train"]) == 0
    assert_same_networks(tmp_path / "one", tmp_path / "two", (["G", "D"] if model_name == "pix2pix" else ["G_A", "G_B", "D_A", "D_B"]))
    a = torch.load(tmp_path / "one" / "latest_checkpoint.pth", weights_only=True)
    b = torch.load(tmp_path / "two" / "latest_checkpoint.pth", weights_only=True)
    assert a["total_iters"] == b["total_iters"] == 8
    assert a["model"]["schedulers"] == b["model"]["schedulers"]
    if model_name == "cycle_gan":
        for pool in ("fake_A_pool", "fake_B_pool"):
            pa, pb = a["model"]["extra"][pool], b["model"]["extra"][pool]
            assert len(pa["images"]) == len(pb["images"]) == 2
            for x, y in zip(pa["images"], pb["images"]):
                torch.testing.assert_close(x, y, rtol=0, atol=1e-6)


@pytest.mark.parametrize("model_name", ["pix2pix", "cycle_gan"])
def test_continue_train_extends_a_finished_run(model_name, aligned_dataroot, unaligned_dataroot, tmp_path, capsys):
    """1 epoch, then --continue_train with more epochs == the longer run in one go.

    The first run's schedule ends at rate 0; the resumed run must follow the schedule of the
    options it is given now, as the reference does (constant, then decaying to zero).
    """
    root = aligned_dataroot if model_name in PAIRED else unaligned_dataroot
    common = ["--max_dataset_size", "2", "--seed", "5", *(["--pool_size", "2"] if model_name == "cycle_gan" else [])]
    longer = ["--n_epochs", "2", "--n_epochs_decay", "1"]
    assert train_script.main(tiny_args(model_name, root, tmp_path, "straight", *common, *longer)) == 0
    assert train_script.main(tiny_args(model_name, root, tmp_path, "extended", *common,
                                       "--n_epochs", "1", "--n_epochs_decay", "0")) == 0
    capsys.readouterr()
    assert train_script.main(tiny_args(model_name, root, tmp_path, "extended", *common, *longer,
                                       "--continue_train")) == 0
    out = capsys.readouterr().out
    assert ("schedule options changed (--n_epochs 1 -> 2, --n_epochs_decay 0 -> 1); learning rate 0.0002 "
            "at epoch 2 of 3 (--lr_policy linear)") in out
    assert_same_networks(tmp_path / "straight", tmp_path / "extended", (["G", "D"] if model_name == "pix2pix" else ["G_A", "G_B", "D_A", "D_B"]))
    a = torch.load(tmp_path / "straight" / "latest_checkpoint.pth", weights_only=True)
    b = torch.load(tmp_path / "extended" / "latest_checkpoint.pth", weights_only=True)
    assert a["model"]["schedulers"] == b["model"]["schedulers"]
    assert [g["lr"] for o in b["model"]["optimizers"] for g in o["param_groups"]] == \
        [g["lr"] for o in a["model"]["optimizers"] for g in o["param_groups"]]


def test_checkpoint_refuses_code_execution(tmp_path):
    from util.checkpoint import safe_load
    from util.errors import UserError

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, path)
    with pytest.raises(UserError, match="refusing to load"):
        safe_load(path)
