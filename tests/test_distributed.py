"""Multi-process training through torchrun on the CPU (gloo): training, equivalence with one
process, stop and resume (in 2 processes and in 1), and a failure on one rank."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import test as test_script
import train as train_script
from tests.helpers import TINY, TINY_BY_MODEL, TINY_TRAIN_BY_MODEL

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is needed")

# pix2pix with instance norm, no dropout, serial data, no flip: 2 processes x batch 1 compute
# what 1 process x batch 2 computes.
EQUIVALENT = ["--model", "pix2pix", "--netG", "resnet_6blocks", "--load_size", "64", "--crop_size", "64",
              "--norm", "instance", "--no_dropout", "--serial_batches", "--no_flip", "--n_epochs", "1",
              "--n_epochs_decay", "1", "--max_dataset_size", "8", "--seed", "4", "--no_html", "--print_freq", "2",
              "--display_freq", "1000", "--save_latest_freq", "4", "--save_by_iter", "--val_freq", "2",
              "--val_metrics", "psnr"]


def torchrun(nproc: int, *args: str, env: dict | None = None, timeout: float = 300,
             script: Path = ROOT / "train.py") -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               str(script), *args]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def run_args(root: Path, ckpt: Path, name: str, *extra: str) -> list:
    return ["--dataroot", str(root), "--name", name, "--checkpoints_dir", str(ckpt), *TINY, *extra]


def weights(folder: Path, name: str) -> dict:
    return torch.load(folder / f"latest_net_{name}.pth", weights_only=True)


def assert_two_updates_agree(two: Path, one: Path, tag: str) -> None:
    """G and D after 2 weight updates in 2 processes equal those of 1 process with the global batch."""
    for name in ("G", "D"):
        a = torch.load(two / f"{tag}_net_{name}.pth", weights_only=True)
        b = torch.load(one / f"{tag}_net_{name}.pth", weights_only=True)
        # Gradients averaged over processes equal the batch's up to rounding. Adam moves a
        # weight by about lr per step whatever its gradient's size, so where a gradient is zero
        # but for rounding (biases before an instance norm) the two can move apart by 2 lr a step.
        total = sum(v.numel() for v in a.values())
        close = sum(int(torch.isclose(a[k], b[k], rtol=0, atol=1e-5).sum()) for k in a)
        assert close / total > 0.99, f"{name}: only {close} of {total} weights within 1e-5"
        # Adam's second step can move a weight by up to about 1.06 lr (beta1 0.5, beta2 0.999): 10% margin.
        assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 2 * 2 * 2e-4 * 1.1


@pytest.fixture(scope="module")
def two_process_run(aligned_dataroot, tmp_path_factory):
    """The EQUIVALENT run in 2 processes (batch 1 each), uninterrupted."""
    ckpt = tmp_path_factory.mktemp("ddp")
    done = torchrun(2, *run_args(aligned_dataroot, ckpt, "two", *EQUIVALENT))
    assert done.returncode == 0, done.stderr[-3000:]
    return ckpt, done


def test_two_processes_equal_one_process_with_the_global_batch(two_process_run, aligned_dataroot, tmp_path):
    ckpt, done = two_process_run
    out = done.stdout
    assert "2 processes (torchrun)" in out and "1 per process x 2 processes = 2" in out
    assert out.count("training done: 16 images seen") == 1  # rank 0 alone reports and writes
    state = torch.load(ckpt / "two" / "latest_checkpoint.pth", weights_only=True)
    assert (state["world_size"], state["total_iters"], len(state["ranks"])) == (2, 16, 2)

    assert train_script.main(run_args(aligned_dataroot, tmp_path, "one", *EQUIVALENT, "--batch_size", "2")) == 0
    assert_two_updates_agree(ckpt / "two", tmp_path / "one", "iter_4")  # 2 steps of 2 images
    # Logged losses are the mean over processes: the same as the single process's batch losses.
    two = [json.loads(line) for line in (ckpt / "two" / "loss_log.jsonl").read_text().splitlines()]
    one = [json.loads(line) for line in (tmp_path / "one" / "loss_log.jsonl").read_text().splitlines()]
    assert [r["total_iters"] for r in two] == [r["total_iters"] for r in one]
    assert two[0]["G_L1"] == pytest.approx(one[0]["G_L1"], rel=1e-4)

    # test.py uses the result of the multi-process run as any other, and scores the best
    # weights as rank 0's validation did: validation gives the numbers of a single process.
    assert test_script.main(["--dataroot", str(aligned_dataroot), "--name", "two", "--model", "pix2pix",
                             "--checkpoints_dir", str(ckpt), "--results_dir", str(tmp_path / "r"), "--gpu_ids", "-1",
                             "--num_threads", "0", "--metrics", "psnr", "--phase", "val", "--epoch", "best",
                             "--seed", "4"]) == 0
    best = json.loads((ckpt / "two" / "best.json").read_text())
    report = json.loads((tmp_path / "r" / "two" / "val_best" / "metrics.json").read_text())
    assert report["metrics"]["psnr"]["mean"] == pytest.approx(best["value"], abs=1e-6)


@pytest.mark.extended  # tens of seconds: out of the default suite (under 10 minutes on 2 cores)
def test_accumulation_syncs_gradients_only_on_the_stepping_step(aligned_dataroot, tmp_path):
    # 2 processes x batch 1 x 2 accumulated steps: the global batch of 1 process x batch 2 x 2 steps.
    args = run_args(aligned_dataroot, tmp_path, "acc", *EQUIVALENT, "--grad_accum_steps", "2")
    done = torchrun(2, *args, script=ROOT / "tests" / "distributed_helpers.py")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 per process x 2 processes x 2 accumulated steps = 4 per update" in done.stdout
    for rank in (0, 1):  # DDP's all-reduce ran in the 2nd, 4th, ... step only (no_sync in the others)
        syncs = json.loads((tmp_path / "acc" / f"syncs_rank{rank}.json").read_text())
        assert syncs == {"steps": 8, "synced": {"G": [2, 4, 6, 8], "D": [2, 4, 6, 8]}}

    one = run_args(aligned_dataroot, tmp_path, "one", *EQUIVALENT, "--grad_accum_steps", "2", "--batch_size", "2")
    assert train_script.main(one) == 0
    assert_two_updates_agree(tmp_path / "acc", tmp_path / "one", "iter_8")  # 2 updates of 4 images


@pytest.mark.extended  # tens of seconds: out of the default suite (under 10 minutes on 2 cores)
def test_sigterm_stops_every_rank_and_the_run_resumes_in_two_or_one_process(two_process_run, aligned_dataroot,
                                                                             tmp_path):
    ckpt, _ = two_process_run
    args = run_args(aligned_dataroot, tmp_path, "stopped", *EQUIVALENT,
                    "--dataset_mode", "tests.distributed_helpers.SignalOnRank")
    # Rank 1 alone is signalled, reading its 6th sample (epoch 2): both ranks stop at one step.
    stopped = torchrun(2, *args, env={"PIX2CYCLE_TEST_SIGNAL_RANK": "1", "PIX2CYCLE_TEST_SIGNAL_AT": "6"})
    assert stopped.returncode != 0
    assert "stopped by signal 15" in stopped.stderr and "resume with: torchrun" in stopped.stderr
    state = torch.load(tmp_path / "stopped" / "latest_checkpoint.pth", weights_only=True)
    assert state["epoch"] == 2 and 0 < state["epoch_iter"] < 4 and state["world_size"] == 2
    shutil.copytree(tmp_path / "stopped", tmp_path / "single")

    resumed = torchrun(2, *args, "--continue_train")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "training done: 16 images seen" in resumed.stdout
    for name in ("G", "D"):  # exactly where the uninterrupted run ends
        a, b = weights(ckpt / "two", name), weights(tmp_path / "stopped", name)
        for key in a:
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6, msg=f"{name}.{key}")

    # The same checkpoint resumed by one process (batch 1): it finishes the epochs it has left.
    single = run_args(aligned_dataroot, tmp_path, "single", *EQUIVALENT, "--continue_train")
    assert train_script.main(single) == 0
    after = torch.load(tmp_path / "single" / "latest_checkpoint.pth", weights_only=True)
    assert (after["epoch"], after["epoch_iter"], after["world_size"]) == (3, 0, 1)


@pytest.mark.extended  # tens of seconds: out of the default suite (under 10 minutes on 2 cores)
def test_a_failure_on_one_rank_ends_the_job(aligned_dataroot, tmp_path):
    # Only rank 0 writes, so only rank 0 finds that the checkpoints folder is a file; rank 1
    # waits at its first collective until torchrun ends it. A hang would hit the timeout.
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the checkpoints folder should be")
    failed = torchrun(2, *run_args(aligned_dataroot, blocked, "run", *EQUIVALENT), timeout=180)
    assert failed.returncode != 0
    assert "error: " in failed.stderr and str(blocked) in failed.stderr


@pytest.mark.extended  # tens of seconds: out of the default suite (under 10 minutes on 2 cores)
def test_torchrun_trains_cycle_gan_with_a_pool_per_rank_and_accumulation(unaligned_dataroot, tmp_path):
    args = run_args(unaligned_dataroot, tmp_path, "cyc", "--model", "cycle_gan", "--netG", "resnet_6blocks",
                    "--load_size", "36", "--crop_size", "32", "--n_epochs", "1", "--n_epochs_decay", "0",
                    "--max_dataset_size", "8", "--pool_size", "2", "--seed", "1", "--grad_accum_steps", "2")
    done = torchrun(2, *args, script=ROOT / "tests" / "distributed_helpers.py")
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):  # 4 steps, 2 accumulations: each network's gradients are all-reduced in steps 2 and 4
        syncs = json.loads((tmp_path / "cyc" / f"syncs_rank{rank}.json").read_text())
        assert syncs == {"steps": 4, "synced": {name: [2, 4] for name in ("G_A", "G_B", "D_A", "D_B")}}
    state = torch.load(tmp_path / "cyc" / "latest_checkpoint.pth", weights_only=True)
    pools = [rank["extra"]["fake_A_pool"]["images"] for rank in state["ranks"]]
    assert [len(p) for p in pools] == [2, 2] and not torch.equal(pools[0][0], pools[1][0])  # each rank its own
    assert test_script.main(["--dataroot", str(unaligned_dataroot), "--name", "cyc", "--model", "cycle_gan",
                             "--checkpoints_dir", str(tmp_path), "--results_dir", str(tmp_path / "r"),
                             "--gpu_ids", "-1", "--num_threads", "0", "--metrics", "none"]) == 0
    assert (tmp_path / "r" / "cyc" / "test_latest" / "index.html").is_file()


@pytest.mark.extended  # tens of seconds: out of the default suite (under 10 minutes on 2 cores)
def test_torchrun_cut_accumulation_syncs_every_network_on_the_stepping_step_only(unaligned_dataroot, tmp_path):
    # CUT steps D before G, as pix2pix does: D's forward in G's step must not leave DDP a pending all-reduce.
    args = run_args(unaligned_dataroot, tmp_path, "cut", "--model", "cut", *TINY_BY_MODEL["cut"],
                    *TINY_TRAIN_BY_MODEL["cut"], "--n_epochs", "1", "--n_epochs_decay", "0",
                    "--max_dataset_size", "8", "--seed", "1", "--grad_accum_steps", "2")
    done = torchrun(2, *args, script=ROOT / "tests" / "distributed_helpers.py")
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):
        syncs = json.loads((tmp_path / "cut" / f"syncs_rank{rank}.json").read_text())
        assert syncs["steps"] == 4 and set(syncs["synced"]) == {"G", "D", "F"}
        assert all(steps == [2, 4] for steps in syncs["synced"].values()), syncs


@pytest.mark.extended  # tens of seconds: out of the default suite (under 10 minutes on 2 cores)
@pytest.mark.parametrize("mode", ["eager", "compile"])
def test_validation_reaches_every_collective_eager_and_compiled(aligned_dataroot, tmp_path, mode):
    """--val_freq under torchrun, with a generator whose norm runs an all-reduce in every
    training-mode forward pass (the gloo stand-in for SyncBatchNorm, which test.py's batch
    norm mode would start): validation runs on every rank, so every rank reaches it and the
    job ends well inside --dist_timeout. Under --compile (a compiled DDP module is no DDP
    instance) validation still runs outside DDP and accumulating steps still skip the
    gradient all-reduce."""
    args = run_args(aligned_dataroot, tmp_path, mode, *EQUIVALENT, "--netG", "tests.distributed_helpers.CollectiveGenerator",
                    "--norm", "batch", "--val_freq", "1", "--grad_accum_steps", "2", "--dist_timeout", "40",
                    *(["--compile"] if mode == "compile" else []))
    done = torchrun(2, *args, script=ROOT / "tests" / "distributed_helpers.py", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("validation (epoch: 1,") == 1 and done.stdout.count("validation (epoch: 2,") == 1
    best = json.loads((tmp_path / mode / "best.json").read_text())
    assert best["metric"] == "psnr" and best["value"] > 0
    for rank in (0, 1):
        syncs = json.loads((tmp_path / mode / f"syncs_rank{rank}.json").read_text())
        assert syncs == {"steps": 8, "synced": {"G": [2, 4, 6, 8], "D": [2, 4, 6, 8]}}


@pytest.mark.extended  # tens of seconds: out of the default suite (under 10 minutes on 2 cores)
def test_more_processes_than_the_checkpoint_had_get_streams_and_pools_of_their_own(unaligned_dataroot, tmp_path):
    """A 1-process checkpoint resumed by 2 processes: rank 1 is not a copy of rank 0 (same
    random stream, same image pools), it starts empty pools and a stream of its own."""
    base = run_args(unaligned_dataroot, tmp_path, "grow", "--model", "cycle_gan", "--netG", "resnet_6blocks",
                    "--load_size", "36", "--crop_size", "32", "--max_dataset_size", "4", "--pool_size", "4",
                    "--seed", "1", "--no_html", "--n_epochs", "1")
    assert train_script.main([*base, "--n_epochs_decay", "0"]) == 0
    resumed = torchrun(2, *base, "--n_epochs_decay", "1", "--continue_train")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state = torch.load(tmp_path / "grow" / "latest_checkpoint.pth", weights_only=True)
    ranks = state["ranks"]
    assert not torch.equal(ranks[0]["rng"]["torch"], ranks[1]["rng"]["torch"])
    assert ranks[0]["rng"]["python"][1].tolist() != ranks[1]["rng"]["python"][1].tolist()
    # Rank 0 kept its 4 pooled images and added 2 steps' fakes; rank 1 started empty: 2 steps' worth.
    assert [len(rank["extra"]["fake_A_pool"]["images"]) for rank in ranks] == [4, 2]
    assert "processes 1 and up start empty image pools and random streams of their own" in resumed.stdout
