"""Never lose a run: a real training process killed inside a save, stopped by SIGTERM, hit by
a NaN loss, a full disk or an unwritable folder leaves the last good checkpoint intact, says
so in one line, and ``--continue_train`` goes on from it."""

from __future__ import annotations

import errno
import io
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

import test as test_script
import train as train_script
from engine import Hook
from tests.helpers import TINY_NETS_32, tiny_args
from util.checkpoint import PAUSE_BEFORE_REPLACE_ENV

REPO_ROOT = Path(__file__).resolve().parents[1]

FAST = [*TINY_NETS_32, "--seed", "3"]



def train_args(root: Path, ckpt: Path, name: str = "run", *extra: str) -> list:
    return tiny_args("pix2pix", root, ckpt, name, *FAST, *extra)


def load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def start_training(args: list, tmp_path: Path, **env) -> subprocess.Popen:
    """``python train.py ARGS`` in a new process, output to files (a full pipe would block it)."""
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **env)
    with open(tmp_path / "stdout.txt", "w") as out, open(tmp_path / "stderr.txt", "w") as err:
        process = subprocess.Popen([sys.executable, "train.py", *args], cwd=REPO_ROOT, env=environment,
                                   stdout=out, stderr=err)
    process.stderr_path = tmp_path / "stderr.txt"
    return process


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"train.py ended early ({process.returncode}): {process.stderr_path.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


def temp_files(folder: Path) -> list:
    return sorted(p.name for p in folder.glob(".*.tmp"))


# ----------------------------------------------------------------- killed processes

def test_sigkill_inside_a_save_keeps_the_previous_checkpoint(aligned_dataroot, tmp_path, capsys):
    """SIGKILL after the new checkpoint is written to its temporary file, before the rename."""
    ckpt, marker = tmp_path / "c", tmp_path / "paused"
    args = train_args(aligned_dataroot, ckpt, "run", "--n_epochs", "2", "--save_latest_freq", "1")
    process = start_training(args, tmp_path, **{PAUSE_BEFORE_REPLACE_ENV: str(marker)})
    try:
        wait_for(marker, process)  # paused while replacing the checkpoint of iteration 1
    finally:
        process.kill()  # SIGKILL: no handler, no cleanup
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    run = ckpt / "run"
    stray = Path(marker.read_text())
    assert stray.parent == run and stray.is_file()  # the complete, never renamed new checkpoint
    assert load(run / "latest_checkpoint.pth")["total_iters"] == 1  # the previous one, intact

    assert train_script.main(args + ["--continue_train"]) == 0
    out = capsys.readouterr().out
    assert f"removed {stray}, left by a save that was interrupted" in out
    assert "resuming from" in out and "epoch 1, iteration 1 of the epoch, 1 images seen" in out
    assert temp_files(run) == []
    assert load(run / "latest_checkpoint.pth")["total_iters"] == 4  # 2 epochs x 2 images


def test_sigterm_saves_prints_the_resume_command_and_exits_nonzero(aligned_dataroot, tmp_path, capsys):
    ckpt = tmp_path / "c"
    args = train_args(aligned_dataroot, ckpt, "run", "--n_epochs", "1000")
    process = start_training(args, tmp_path)
    try:
        wait_for(ckpt / "run" / "latest_checkpoint.pth", process)  # training is under way
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        process.kill()
    err = (tmp_path / "stderr.txt").read_text()
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and f"stopped by signal {int(signal.SIGTERM)}; saved" in err
    command = shlex.split(err.split("resume with: ", 1)[1].splitlines()[0])
    assert command[:2] == ["python", "train.py"] and command[-1] == "--continue_train"
    assert command[2:-1] == args
    state = load(ckpt / "run" / "latest_checkpoint.pth")
    assert state["total_iters"] >= 2

    # The printed command resumes; --n_epochs at the saved epoch keeps it short.
    resumed = command[2:] + ["--n_epochs", str(state["epoch"])]
    assert train_script.main(resumed) == 0
    assert f"resuming from {ckpt / 'run' / 'latest_checkpoint.pth'}: epoch {state['epoch']}," in capsys.readouterr().out
    after = load(ckpt / "run" / "latest_checkpoint.pth")
    assert (after["epoch"], after["epoch_iter"]) == (state["epoch"] + 1, 0)


# ----------------------------------------------------------------- failures inside the run

def test_nan_loss_stops_naming_loss_and_iteration(aligned_dataroot, tmp_path, monkeypatch, capsys):
    """A NaN input at iteration 3 makes every loss NaN; the checkpoint of iteration 2 stays."""
    class NanAtStep3(Hook):
        steps = 0

        def before_step(self, trainer):
            self.steps += 1
            if self.steps == 3:
                trainer.state.batch = dict(trainer.state.batch, A=torch.full_like(trainer.state.batch["A"], float("nan")))

    args = train_args(aligned_dataroot, tmp_path, "run", "--max_dataset_size", "4", "--save_latest_freq", "2")
    assert train_script.main(args, hooks=[NanAtStep3()]) == 2
    line = one_line_error(capsys)
    assert "loss_G_GAN" in line and "loss_G_L1" in line and "not finite at iteration 3" in line
    assert "the last saved checkpoint is intact" in line
    state = load(tmp_path / "run" / "latest_checkpoint.pth")
    assert state["total_iters"] == 2
    for weights in [state["model"]["networks"]["G"], load(tmp_path / "run" / "latest_net_G.pth")]:
        assert all(bool(v.isfinite().all()) for v in weights.values() if v.is_floating_point())


class _DiskFull(io.RawIOBase):
    """A file that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, f, room: int) -> None:
        self.f, self.room = f, room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            self.f.write(bytes(data[:self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)


def test_disk_full_during_a_save(aligned_dataroot, tmp_path, monkeypatch, capsys):
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        # The real torch.save, writing to a disk that fills up during the checkpoint of iteration 2.
        if isinstance(obj, dict) and obj.get("total_iters") == 2:
            f = _DiskFull(f, room=4096)
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    args = train_args(aligned_dataroot, tmp_path, "run", "--save_latest_freq", "1")
    assert train_script.main(args) == 2
    line = one_line_error(capsys)
    path = tmp_path / "run" / "latest_checkpoint.pth"
    assert line == f"error: cannot write checkpoint {path} (the previous one is kept): No space left on device"
    assert load(path)["total_iters"] == 1
    assert temp_files(tmp_path / "run") == []


def test_checkpoints_folder_not_writable(aligned_dataroot, tmp_path, capsys):
    (tmp_path / "file").write_text("a file, not a folder")  # root can write anywhere; not below a file
    args = train_args(aligned_dataroot, tmp_path / "file" / "checkpoints")
    assert train_script.main(args) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"error: cannot write to {tmp_path / 'file' / 'checkpoints' / 'run'} (Not a directory)")
    assert "--checkpoints_dir" in line


def test_checkpoints_folder_becomes_unwritable(aligned_dataroot, tmp_path, monkeypatch, capsys):
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, prefix=None, **kwargs):
        # Permission lost after the run started (a read-only remount, a full quota, ...).
        if prefix and prefix.startswith(".latest_checkpoint.pth") and (tmp_path / "run" / prefix[1:-1]).exists():
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), kwargs.get("dir"))
        return real_mkstemp(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    args = train_args(aligned_dataroot, tmp_path, "run", "--n_epochs", "2")
    assert train_script.main(args) == 2
    line = one_line_error(capsys)
    assert f"cannot write checkpoint {tmp_path / 'run' / 'latest_checkpoint.pth'}" in line
    assert f"folder {tmp_path / 'run'} is not writable (Permission denied)" in line
    assert load(tmp_path / "run" / "latest_checkpoint.pth")["epoch"] == 2  # from the end of epoch 1


# ----------------------------------------------------------------- loading what is there

@pytest.fixture(scope="module")
def trained(aligned_dataroot, tmp_path_factory) -> Path:
    ckpt = tmp_path_factory.mktemp("trained")
    assert train_script.main(train_args(aligned_dataroot, ckpt)) == 0
    return ckpt


@pytest.mark.parametrize("flags, differ", [
    (["--ngf", "8"], "--ngf 4 (saved) vs 8 (now)"),
    (["--netG", "resnet_9blocks"], "--netG resnet_6blocks (saved) vs resnet_9blocks (now)"),
    (["--norm", "instance"], "--norm batch (saved) vs instance (now)"),
])
def test_architecture_mismatch_names_the_options(flags, differ, trained, aligned_dataroot, tmp_path, capsys):
    args = ["--dataroot", str(aligned_dataroot), "--name", "run", "--model", "pix2pix", "--checkpoints_dir",
            str(trained), "--results_dir", str(tmp_path), "--gpu_ids", "-1", "--num_threads", "0",
            "--crop_size", "32", "--max_dataset_size", "1", *flags]
    assert test_script.main(args) == 2
    line = one_line_error(capsys)
    assert f"weights {trained / 'run' / 'latest_net_G.safetensors'} do not fit netG" in line and differ in line


def test_resume_mismatch_uses_the_options_in_the_checkpoint(trained, aligned_dataroot, tmp_path, capsys):
    run = tmp_path / "copy"
    run.mkdir()
    for p in (trained / "run").glob("latest_*.pth"):
        (run / p.name).write_bytes(p.read_bytes())  # no train_opt.json: only the checkpoint knows
    assert train_script.main(train_args(aligned_dataroot, tmp_path, "copy", "--continue_train", "--ngf", "8")) == 2
    line = one_line_error(capsys)
    assert "latest_checkpoint.pth do not fit netG" in line and "--ngf 4 (saved) vs 8 (now)" in line


def test_damaged_checkpoint_is_a_clear_error(trained, aligned_dataroot, tmp_path, capsys):
    run = tmp_path / "damaged"
    run.mkdir()
    data = (trained / "run" / "latest_checkpoint.pth").read_bytes()
    (run / "latest_checkpoint.pth").write_bytes(data[: len(data) // 2])
    assert train_script.main(train_args(aligned_dataroot, tmp_path, "damaged", "--continue_train")) == 2
    line = one_line_error(capsys)
    assert f"cannot read checkpoint {run / 'latest_checkpoint.pth'}: it is damaged" in line


@pytest.mark.parametrize("links", [True, False])
def test_epoch_files_share_the_latest_bytes_and_keep_them(links, aligned_dataroot, tmp_path, monkeypatch):
    if not links:  # a file system without hard links: the files are copied
        def no_link(*a, **k):
            raise OSError(errno.EPERM, "hard links not supported")
        monkeypatch.setattr(os, "link", no_link)
    run = tmp_path / "run"
    assert train_script.main(train_args(aligned_dataroot, tmp_path, "run", "--n_epochs", "2",
                                        "--save_epoch_freq", "1")) == 0
    for stem in ("net_G", "net_D", "checkpoint"):
        first, second, latest = (run / f"{tag}_{stem}.pth" for tag in ("1", "2", "latest"))
        assert latest.read_bytes() == second.read_bytes()
        assert first.read_bytes() != latest.read_bytes()  # epoch 1 kept its own weights when latest moved on
        assert (os.stat(latest).st_ino == os.stat(second).st_ino) == links
    state = load(run / "1_checkpoint.pth")
    assert state["epoch"] == 2 and state["epoch_iter"] == 0  # resuming from epoch 1's file starts epoch 2
    assert not list(run.glob(".*.tmp"))
