"""Trust: a model folder never runs code on open, and runs never overwrite each other.

A run trained with a plugin outside the tree (a dotted path) records that path in its
train_opt.json. Opened by test.py, translate.py, export.py or the Translator, such a folder
is refused before anything of it is imported, unless the user names the plugin again or
trusts it; here the plugin is a module shipped inside the model folder itself, on the import
path, which writes a marker file when imported. A second run into a folder that holds a
trained run is refused (or, with --overwrite, moves the old run aside); a live run's lock
refuses a second writer, and the lock of a killed run is taken over.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import export
import test as test_script
import train
import translate
from pix2cycle import Translator
from tests.conftest import REPO_ROOT
from tests.helpers import TINY_NETS_32, tiny_args
from util.errors import UserError
from util.run_folder import LOCK_FILE, RunLock

PLUGIN = '''
from pathlib import Path

Path(__file__).with_name("IMPORTED").write_text("the folder's code ran")

from tests.outside_plugins import TinyGenerator as Generator  # noqa: E402,F401
'''


@pytest.fixture(scope="module")
def shared_model(tmp_path_factory, aligned_dataroot):
    """A pix2pix run whose train_opt.json names ``folder_plugin.Generator``, a module inside the
    run folder; the folder is on sys.path, as a downloaded model folder next to a script is."""
    root = tmp_path_factory.mktemp("shared")
    args = tiny_args("pix2pix", aligned_dataroot, root, "shared", "--netG", "tests.outside_plugins.TinyGenerator",
                     "--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "2",
                     "--load_size", "36", "--crop_size", "32", "--no_html")
    assert train.main(args) == 0
    folder = root / "shared"
    (folder / "folder_plugin.py").write_text(PLUGIN)
    saved = json.loads((folder / "train_opt.json").read_text())
    saved["netG"] = "folder_plugin.Generator"
    (folder / "train_opt.json").write_text(json.dumps(saved))
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    sys.modules.pop("folder_plugin", None)


def imported(folder: Path) -> bool:
    return (folder / "IMPORTED").exists() or "folder_plugin" in sys.modules


def test_opening_a_folder_that_names_a_module_imports_nothing(shared_model, aligned_dataroot, tmp_path, capsys):
    folder = shared_model
    where = ["--name", "shared", "--checkpoints_dir", str(folder.parent)]
    capsys.readouterr()
    assert test_script.main(["--dataroot", str(aligned_dataroot), "--model", "pix2pix", *where, "--gpu_ids", "-1",
                             "--results_dir", str(tmp_path / "r"), "--num_threads", "0"]) == 2
    image = tmp_path / "in.png"
    shutil.copy(next((aligned_dataroot / "test").iterdir()), image)
    assert translate.main([str(image), *where, "--out", str(tmp_path / "t"), "--gpu_ids", "-1"]) == 2
    assert export.main([*where, "--format", "exported_program", "--out", str(tmp_path / "g.pt2")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)
    assert all("--netG folder_plugin.Generator" in line and "--trust_remote_code" in line for line in errors)
    with pytest.raises(UserError, match="trust_remote_code=True"):
        Translator.from_checkpoint(folder, device="cpu")
    assert not imported(folder)
    assert not (tmp_path / "r").exists() and not (tmp_path / "t").exists() and not (tmp_path / "g.pt2").exists()


def test_a_saved_model_plugin_is_refused_too(shared_model, aligned_dataroot, tmp_path, capsys):
    """--model test reads any run's generator: a run whose --model is a dotted path is refused
    the same way (its architecture keys would be read from the plugin)."""
    other = tmp_path / "ck" / "other"
    shutil.copytree(shared_model, other, ignore=shutil.ignore_patterns("*.py", "IMPORTED"))
    saved = json.loads((other / "train_opt.json").read_text())
    saved.update(model="folder_plugin.Model", netG="unet_128")
    (other / "train_opt.json").write_text(json.dumps(saved))
    assert test_script.main(["--dataroot", str(aligned_dataroot), "--model", "test", "--name", "other",
                             "--checkpoints_dir", str(tmp_path / "ck"), "--gpu_ids", "-1",
                             "--results_dir", str(tmp_path / "r"), "--dataset_mode", "single"]) == 2
    assert "--model folder_plugin.Model" in capsys.readouterr().err
    assert not imported(shared_model)


def test_the_plugin_loads_when_named_or_trusted(shared_model, aligned_dataroot, tmp_path):
    """The explicit opt-in: --netG names the plugin again (test.py), or trust_remote_code=True."""
    folder = shared_model
    try:
        assert test_script.main(["--dataroot", str(aligned_dataroot), "--model", "pix2pix", "--name", "shared",
                                 "--checkpoints_dir", str(folder.parent), "--gpu_ids", "-1", "--num_threads", "0",
                                 "--results_dir", str(tmp_path / "r"), "--netG", "folder_plugin.Generator"]) == 0
        assert imported(folder)
        assert len(list((tmp_path / "r" / "shared" / "test_latest" / "images").glob("*_fake_B.png"))) == 4
        translator = Translator.from_checkpoint(folder, device="cpu", trust_remote_code=True)
        assert type(translator.net).__name__ == "TinyGenerator"
    finally:
        (folder / "IMPORTED").unlink(missing_ok=True)
        sys.modules.pop("folder_plugin", None)


def test_weights_that_do_not_fit_are_an_error_not_a_partial_load(tmp_path, aligned_dataroot):
    import torch

    args = tiny_args("pix2pix", aligned_dataroot, tmp_path, "p", *TINY_NETS_32[:4])
    args += ["--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "1", "--no_html"]
    assert train.main(args) == 0
    weights = torch.load(tmp_path / "p" / "latest_net_G.pth", weights_only=True)
    weights.pop(next(iter(weights)))  # one tensor fewer
    torch.save(weights, tmp_path / "p" / "latest_net_G.pth")
    with pytest.raises(UserError, match="do not fit"):
        Translator.from_checkpoint(tmp_path / "p", device="cpu")


# ----------------------------------------------------------------------------- runs never overwrite
def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def quick(aligned_dataroot, checkpoints: Path, name: str = "run", *extra: str) -> list:
    return ["--dataroot", str(aligned_dataroot), "--model", "cycle_gan", "--dataset_mode", "unaligned",
            "--name", name, "--checkpoints_dir", str(checkpoints), "--gpu_ids", "-1", "--num_threads", "0",
            *TINY_NETS_32, "--pool_size", "0", *extra]


def test_a_new_run_does_not_replace_a_trained_one(unaligned_dataroot, tmp_path, capsys):
    args = quick(unaligned_dataroot, tmp_path, "run", "--seed", "1")
    assert train.main(args) == 0
    before = {p.name: sha(p) for p in (tmp_path / "run").glob("*.pth")}
    capsys.readouterr()
    assert train.main(quick(unaligned_dataroot, tmp_path, "run", "--seed", "2")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "--continue_train" in err and "another --name" in err and "--overwrite" in err
    assert {p.name: sha(p) for p in (tmp_path / "run").glob("*.pth")} == before
    assert not (tmp_path / "run" / LOCK_FILE).exists()

    assert train.main(quick(unaligned_dataroot, tmp_path, "run", "--seed", "2", "--overwrite")) == 0
    out = capsys.readouterr().out
    (aside,) = tmp_path.glob("run.old-*")
    assert str(aside) in out
    assert {p.name: sha(p) for p in aside.glob("*.pth")} == before  # the old run, whole
    assert (aside / "train_opt.json").is_file()
    assert sha(tmp_path / "run" / "latest_net_G_A.pth") != before["latest_net_G_A.pth"]

    assert train.main(quick(unaligned_dataroot, tmp_path, "run", "--overwrite", "--continue_train")) == 2
    assert "give one of them" in capsys.readouterr().err


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        assert process.poll() is None, "the first run ended before taking its lock"
        assert time.time() < deadline, f"no {path} after {seconds} s"
        time.sleep(0.1)


def test_a_live_run_refuses_a_second_and_a_killed_ones_lock_is_taken_over(unaligned_dataroot, tmp_path, capsys):
    """A real second process trains into the folder: while it lives, a run with the same
    --name is refused; after kill -9 (its lock left behind) the run goes on, with a note."""
    first = quick(unaligned_dataroot, tmp_path, "run", "--n_epochs", "100000", "--save_latest_freq", "1")
    process = subprocess.Popen([sys.executable, str(REPO_ROOT / "train.py"), *first], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = tmp_path / "run" / LOCK_FILE
    try:
        _wait_for(lock, process)
        _wait_for(tmp_path / "run" / "latest_checkpoint.pth", process)
        capsys.readouterr()
        assert train.main(quick(unaligned_dataroot, tmp_path, "run", "--continue_train")) == 2
        err = capsys.readouterr().err
        assert f"in use by another run (process {process.pid} on {socket.gethostname()}" in err
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert json.loads(lock.read_text())["pid"] == process.pid  # left behind by kill -9
    assert train.main(quick(unaligned_dataroot, tmp_path, "run", "--continue_train")) == 0
    out = capsys.readouterr().out
    assert f"took over the lock of {tmp_path / 'run'} from process {process.pid}" in out
    assert "that process is gone" in out and "resuming from" in out
    assert not lock.exists()


def _holder(folder: Path) -> subprocess.Popen:
    """Another process that holds ``folder``'s lock until killed."""
    code = ("import sys, time; from util.run_folder import RunLock; "
            f"RunLock({str(folder)!r}).acquire(); print('held', flush=True); time.sleep(600)")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_test_py_and_ablate_refuse_a_folder_in_use(aligned_dataroot, tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("ablate_for_trust", REPO_ROOT / "scripts" / "ablate.py")
    ablate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablate)
    results = tmp_path / "results"
    holders = [_holder(results / "run" / "test_latest"), _holder(results / "study")]
    try:
        capsys.readouterr()
        assert test_script.main(["--dataroot", str(aligned_dataroot), "--model", "pix2pix", "--name", "run",
                                 "--checkpoints_dir", str(tmp_path), "--results_dir", str(results),
                                 "--gpu_ids", "-1"]) == 2
        assert f"in use by another test.py run (process {holders[0].pid}" in capsys.readouterr().err
        assert ablate.main(["--name", "study", "--grid", "lr=0.1", "--results_dir", str(results),
                            "--checkpoints_dir", str(tmp_path / "ck"), "--",
                            "--dataroot", str(aligned_dataroot)]) == 2
        assert f"in use by another study (process {holders[1].pid}" in capsys.readouterr().err
        assert not (tmp_path / "ck" / "study" / LOCK_FILE).exists()  # its other folder's lock was let go
    finally:
        for process in holders:
            process.kill()
            process.wait()


def test_locks_from_a_past_boot_and_from_other_hosts(tmp_path, capsys):
    folder = tmp_path / "run"
    lock = RunLock(folder)
    with lock:
        held = json.loads((folder / LOCK_FILE).read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        with pytest.raises(UserError, match="in use by another run"):
            RunLock(folder).acquire()  # a live process holds it, this one included
    assert not folder.exists()  # made by the lock, and nothing written: removed again

    folder.mkdir()
    (folder / LOCK_FILE).write_text(json.dumps({**held, "boot_id": "an-earlier-boot"}))
    with RunLock(folder):
        assert "the machine has restarted since" in capsys.readouterr().out
    (folder / LOCK_FILE).write_text(json.dumps({**held, "host": "node-17"}))
    with pytest.raises(UserError, match=f"taken on another machine, so if that run is gone, delete {folder / LOCK_FILE}"):
        RunLock(folder).acquire()


def test_a_torch_whose_safe_loading_runs_code_is_refused(tmp_path, monkeypatch):
    """torch.load(weights_only=True) could still run code before torch 2.6 (CVE-2025-32434)."""
    import torch

    from util.checkpoint import safe_load

    torch.save({"w": torch.ones(1)}, tmp_path / "w.pth")
    assert torch.equal(safe_load(tmp_path / "w.pth")["w"], torch.ones(1))
    monkeypatch.setattr(torch, "__version__", "2.5.1+cpu")
    with pytest.raises(UserError, match="install torch 2.6 or newer"):
        safe_load(tmp_path / "w.pth")
