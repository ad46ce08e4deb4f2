"""The command blocks of README.md and docs/*.md, run as written.

Each doc's ```bash blocks run in document order in one sandbox: a copy of the checkout
(so ``python train.py``, ``bash scripts/...`` and relative paths mean what they mean to a
reader) with the demo data or a few images of ``../shared/datasets`` where the doc expects
a download, and the files a doc presupposes (your photos, your trained run). ``python X.py``
commands run in this process (``main(argv)``); a doc's "For a quick run, add `F` to train.py
and `G` to test.py" sentence appends those flags to its train.py and test.py commands.

A command fails the test when it exits with an error, prints a traceback, a download line or
an ``error:`` line, when a ``# -> path`` it announces is not there, or when an output line the
doc shows right under it (``# metrics over ...``) is not printed. What cannot run here is
listed in ``SKIPPED`` with the reason, and marked in the doc with a comment saying "not run by
the docs test" (on the line, or at the top of a block for the whole block).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import export
import test as test_script
import train as train_script
import translate
from tests.conftest import REPO_ROOT, SHARED_DATASETS, load_script

DOCS = ["README.md", *sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "docs").glob("*.md"))]
SKIP_MARK = "not run by the docs test"
NETWORK = "downloads: no network here"

# (doc, start of a block's first command or of one command): why it cannot run here.
SKIPPED: Dict[tuple, str] = {
    ("README.md", "bash scripts/quickstart.sh"): "installs from the network and runs this suite; its steps run "
                                                 "offline in test_quick_start_offline",
    ("README.md", "PIX2CYCLE_UNLOCKED=1 bash .ci/run"): "a new virtual environment installed from the network",
    ("README.md", "python -m pip install -e . --no-deps"): "installs into this suite's environment; "
                                                          "tests/test_install.py installs into a throwaway venv",
    ("README.md", "bash datasets/download_pix2pix_dataset.sh"): NETWORK + " (the demo data stands in)",
    ("README.md", "bash datasets/download_cyclegan_dataset.sh"): NETWORK + " (the demo data stands in)",
    ("README.md", "bash scripts/download_cyclegan_model.sh"): NETWORK,
    ("README.md", "bash scripts/download_pix2pix_model.sh"): NETWORK,
    ("README.md", "python translate.py photos/ --name horse2zebra_pretrained"): "needs the downloaded model",
    ("README.md", "torchrun --standalone --nproc_per_node=4"): "needs 4 GPUs, and 2 machines of 8",
    ("README.md", "head=$(scontrol"): "a SLURM job on 2 machines with 8 GPUs each",
    ("README.md", "torchrun --standalone --nproc_per_node 4 --signals-to-handle"): "a SLURM job with 4 GPUs that "
                                                                                   "requeues itself",
    ("README.md", "python scripts/benchmark.py --quick"): "a measurement of minutes",
    ("docs/ablation.md", "python scripts/ablate.py --preset seed_study"): "45 minutes on 2 cores; the paper's "
                                                                         "sizes need a GPU",
    ("docs/benchmarks.md", "python scripts/benchmark.py --quick"): "measurements of minutes to an hour",
    ("docs/benchmarks.md", "python scripts/benchmark.py --threads 1"): "measurements of minutes",
    ("docs/benchmarks.md", "python scripts/benchmark.py --scale"): "measurements of minutes (a million files)",
    ("docs/inference.md", "pip install -r requirements-export.txt"): NETWORK,
    ("docs/inference.md", "bash scripts/download_cyclegan_model.sh"): NETWORK + ", and the models it fetches",
    ("docs/models.md", "python scripts/compare_models.py"): "a measurement of minutes",
    ("README.md", "pip install -r requirements-app.txt"): NETWORK,
    ("README.md", "python app.py"): "a server (tests/test_app.py drives it in Chromium)",
    ("docs/inference.md", "python app.py"): "a server (tests/test_app.py drives it in Chromium)",
    ("README.md", "python export.py --name maps_pix2pix --format hub --out maps_hub --push_to_hub"): "uploads: "
                                                                                                   "no network here",
    ("docs/inference.md", "python export.py --name facades_pix2pix --format hub --out facades_hub --push_to_hub"):
        "uploads: no network here",
    ("docs/models.md", "python scripts/measure_multimodal.py"): "a measurement of minutes",
    ("docs/visualization.md", "python -m visdom.server"): "a server in another terminal",
    ("docs/visualization.md", 'python -c "import sys; sys.argv'): "a server",
    ("docs/visualization.md", "pip install tensorboard"): NETWORK,
    ("docs/visualization.md", "pip install wandb"): NETWORK + ", and an account",
}
# Docs whose commands read ../shared/datasets (a few maps images stand in for a download).
NEEDS_SHARED = {"README.md", "docs/metrics.md", "docs/models.md", "docs/visualization.md"}
# torch.onnx needs the optional packages; a command that says so runs where they are installed.
EXPORT_EXTRAS_LINE = "requirements-export.txt"
FORBIDDEN = ("Traceback", "Downloading", "downloading ")


@dataclass
class Command:
    line: int
    text: str                     # the command, continuation lines joined
    comment: str = ""             # its trailing comment
    shown: List[str] = field(default_factory=list)  # comment lines right under it: output the doc shows


@dataclass
class Block:
    doc: str
    line: int
    commands: List[Command]
    skip_reason: Optional[str]    # set when the whole block is not run


def shell_blocks(doc: str) -> List[Block]:
    """The ```bash blocks of ``doc`` as commands, with the doc's skip marks resolved."""
    text = (REPO_ROOT / doc).read_text()
    blocks = []
    for match in re.finditer(r"```(bash|sh)\n(.*?)```", text, re.S):
        first_line = text[:match.start()].count("\n") + 2
        lines = match.group(2).splitlines()
        commands: List[Command] = []
        marked_block = False
        i, previous_was_command = 0, False
        while i < len(lines):
            start, raw = i, lines[i]
            while raw.endswith("\\") and i + 1 < len(lines):
                i += 1
                raw = raw[:-1] + " " + lines[i].strip()
            i += 1
            stripped = raw.strip()
            if not stripped:
                previous_was_command = False
                continue
            if stripped.startswith("#"):
                note = stripped.lstrip("#").strip()
                if SKIP_MARK in note and not commands:
                    marked_block = True
                elif previous_was_command and commands and not stripped.startswith("#!") \
                        and not stripped.startswith("#SBATCH"):
                    commands[-1].shown.append(note)
                continue
            command, _, comment = _split_comment(stripped)
            commands.append(Command(first_line + start, command.strip(), comment.strip()))
            previous_was_command = True
        reason = None
        if marked_block:
            reason = _skip_reason(doc, commands[0].text) or f"marked but not in SKIPPED: {commands[0].text}"
        blocks.append(Block(doc, first_line, commands, reason))
    return blocks


def _split_comment(line: str):
    """(command, '#', comment): the first '#' outside quotes and not inside $(...) or a word."""
    quote = None
    for k, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or line[k - 1].isspace()):
            return line[:k], "#", line[k + 1:]
    return line, "", ""


def _skip_reason(doc: str, command: str) -> Optional[str]:
    for (skip_doc, start), reason in SKIPPED.items():
        if skip_doc == doc and command.startswith(start):
            return reason
    return None


def quick_flags(doc: str) -> Dict[str, List[str]]:
    """The doc's "For a quick run, add `F` to train.py [and `G` to test.py]" flags."""
    text = " ".join((REPO_ROOT / doc).read_text().split())
    match = re.search(r"[Ff]or a quick run[^`]*`([^`]+)` to (?:the )?train\.py(?:[^`.]*`([^`]+)` to test\.py)?", text)
    if not match:
        return {}
    return {"train.py": match.group(1).split(), "test.py": (match.group(2) or "").split(),
            "scripts/ablate.py": match.group(1).split()}  # its train.py flags, after --


# ---------------------------------------------------------------- the sandbox


def checkout_copy(dest: Path) -> Path:
    """The tracked files of this checkout (what a reader has), without runs or data."""
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True,
                               timeout=60).stdout.decode().split("\0")
    except (OSError, subprocess.SubprocessError):
        files = [str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.rglob("*")
                 if p.is_file() and not {".git", "checkpoints", "results", "__pycache__"} & set(p.parts)]
    for name in filter(None, files):
        source = REPO_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def demo(root: Path, kind: str) -> None:
    load_script("make_demo_data").make_demo_dataset(root, kind, n_train=4, n_test=2, size=64, seed=3)


def maps_subset(root: Path) -> None:
    """A few images of the real pix2pix maps, in its layout (train/ and val/, no test/)."""
    for split, count in (("train", 4), ("val", 2)):
        (root / split).mkdir(parents=True)
        for path in sorted((SHARED_DATASETS / "maps" / split).iterdir())[:count]:
            shutil.copy(path, root / split / path.name)


def photos(folder: Path, names: List[str], mode: str = "RGB") -> None:
    rng = np.random.default_rng(len(names))
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)).convert(mode).save(folder / name)


def sixteen_bit_tif(path: Path) -> None:
    tifffile.imwrite(path, np.random.default_rng(0).integers(0, 65535, (80, 100, 3), dtype=np.uint16),
                     photometric="rgb")


def tiny_run(root: Path, name: str, model: str, dataroot: str, *extra: str) -> None:
    """A trained run the doc presupposes ("your run"), trained here in seconds."""
    args = ["--dataroot", dataroot, "--name", name, "--model", model, "--n_epochs", "1", "--n_epochs_decay", "0",
            "--max_dataset_size", "2", "--ngf", "8", "--ndf", "8", "--gpu_ids", "-1", "--num_threads", "0",
            "--print_freq", "100", "--display_freq", "100", "--update_html_freq", "100", *extra]
    with _cwd(root):
        assert train_script.main(args) == 0


def bare_weights(root: Path, name: str, netG: str, norm: str) -> None:
    """Weights without train_opt.json, as a download or another code base leaves them."""
    from models.networks import define_G
    folder = root / "checkpoints" / name
    folder.mkdir(parents=True)
    torch.save(define_G(3, 3, 64, netG, norm).state_dict(), folder / "latest_net_G.pth")


def stage(doc: str, root: Path) -> None:
    """What ``doc`` presupposes: downloaded datasets, the reader's images and trained runs."""
    datasets = root / "datasets"
    if doc in ("README.md", "docs/inference.md", "docs/ablation.md", "docs/sharded_data.md"):
        demo(datasets / "facades", "aligned")
        demo(datasets / "horse2zebra", "unaligned")
    if doc in NEEDS_SHARED:
        maps_subset(datasets / "maps")
    if doc in ("README.md", "docs/models.md"):
        photos(root / "my_gray_photos", ["g1.png", "g2.png"], mode="L")
    if doc == "README.md":
        photos(root, ["photos/p1.jpg", "photos/p2.jpg", "more/m1.jpg"])
        sixteen_bit_tif(root / "huge.tif")
        tiny_run(root, "maps_pix2pix", "pix2pix", "./datasets/facades")
    if doc == "docs/inference.md":
        photos(root, ["photo.jpg", "shots/s1.png", "more/deep/m1.png", "x.png"])
        sixteen_bit_tif(root / "big_map.tif")
        tiny_run(root, "horse2zebra", "cycle_gan", "./datasets/horse2zebra")
        tiny_run(root, "maps_pix2pix", "pix2pix", "./datasets/facades")
        tiny_run(root, "facades_pix2pix", "pix2pix", "./datasets/facades", "--direction", "BtoA")
        bare_weights(root, "my_weights", "resnet_9blocks", "instance")


# ---------------------------------------------------------------- running commands


class _cwd:
    def __init__(self, path: Path) -> None:
        self.path, self.old = path, None

    def __enter__(self):
        self.old = os.getcwd()
        os.chdir(self.path)

    def __exit__(self, *exc):
        os.chdir(self.old)


def _script_main(root: Path, script: str) -> Callable:
    """``main`` of ``script`` (a path relative to the checkout): the imported top-level scripts,
    or the sandbox's copy of a script in scripts/ or datasets/."""
    top = {"train.py": train_script, "test.py": test_script, "translate.py": translate, "export.py": export}
    if script in top:
        return top[script].main
    path = root / script
    spec = importlib.util.spec_from_file_location(f"docs_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.main


def run_command(root: Path, command: Command, quick: Dict[str, List[str]], capsys) -> str:
    """Run one documented command in ``root``; returns what it printed (stdout + stderr)."""
    argv = shlex.split(command.text)
    assert argv[0] in ("python", "python3") and argv[1].endswith(".py"), \
        f"the docs test runs python scripts only: {command.text}"
    script, args = argv[1], argv[2:] + quick.get(argv[1], [])
    main = _script_main(root, script)
    capsys.readouterr()
    with _cwd(root):
        try:
            code = main(args)
        except SystemExit as e:
            code = e.code
    out, err = capsys.readouterr()
    printed = out + err
    assert code in (0, None), f"{command.text!r} (line {command.line}) exited with {code}:\n{printed[-3000:]}"
    return printed


def check_output(root: Path, command: Command, printed: str) -> None:
    where = f"{command.text!r} (line {command.line})"
    for bad in FORBIDDEN:
        assert bad not in printed, f"{where} printed {bad!r}:\n{printed[-3000:]}"
    errors = [line for line in printed.splitlines() if line.startswith("error:")]
    assert not errors, f"{where}: {errors}"
    for note in [command.comment, *command.shown]:
        if note.startswith("->"):
            target = note[2:].strip().split()[0].rstrip(":,")
            if "/" in target or "." in target:
                assert (root / target).exists(), f"{where} announces {target}, which is not there"
    for shown in command.shown:
        if shown.startswith("->"):
            continue
        prefix = re.split(r"\d", shown, maxsplit=1)[0]
        assert prefix.strip() and prefix in printed, f"{where}: the doc shows '{shown}', not printed:\n{printed}"


def run_doc(doc: str, root: Path, capsys) -> List[str]:
    """Run every block of ``doc``; returns the commands skipped, with their reasons."""
    quick = quick_flags(doc)
    skipped = []
    for block in shell_blocks(doc):
        if block.skip_reason:
            skipped += [f"{doc}:{c.line}: {c.text[:60]} ({block.skip_reason})" for c in block.commands]
            continue
        for command in block.commands:
            if SKIP_MARK in command.comment:
                skipped.append(f"{doc}:{command.line}: {command.text[:60]} ({_skip_reason(doc, command.text)})")
                continue
            if EXPORT_EXTRAS_LINE in command.comment and not all(
                    importlib.util.find_spec(m) for m in export.EXPORT_EXTRAS):
                skipped.append(f"{doc}:{command.line}: {command.text[:60]} (needs {EXPORT_EXTRAS_LINE})")
                continue
            check_output(root, command, run_command(root, command, quick, capsys))
    return skipped


# ---------------------------------------------------------------- the tests


def test_skip_marks_and_list_agree():
    """Each command the docs test skips is marked in its doc and listed in SKIPPED with its
    reason; nothing is listed that no doc marks."""
    used = set()
    for doc in DOCS:
        for block in shell_blocks(doc):
            marked = [block.commands[0]] if block.skip_reason else [c for c in block.commands if SKIP_MARK in c.comment]
            for command in marked:
                key = next((k for k in SKIPPED if k[0] == doc and command.text.startswith(k[1])), None)
                assert key, f"{doc}:{command.line} is marked '{SKIP_MARK}' but not listed in SKIPPED"
                used.add(key)
    assert used == set(SKIPPED), f"listed in SKIPPED, not marked in their docs: {set(SKIPPED) - used}"


@pytest.fixture(scope="module")
def worktree_clean():
    """The docs test writes only in its sandboxes: nothing new in the checkout."""
    before = {p for p in REPO_ROOT.iterdir()}
    yield
    assert {p for p in REPO_ROOT.iterdir()} <= before | {REPO_ROOT / ".pytest_cache"}


# docs/models.md trains each model family it shows (about a minute): in the extended group.
@pytest.mark.parametrize("doc", [pytest.param(d, marks=pytest.mark.extended) if d == "docs/models.md" else d
                                 for d in DOCS])
def test_doc_commands_run_as_written(doc, tmp_path, capsys, monkeypatch, worktree_clean):
    if doc in NEEDS_SHARED and not SHARED_DATASETS.is_dir():
        pytest.skip(f"{doc} runs on images of {SHARED_DATASETS}, absent here")
    # Offline and without cached metric weights, as on a machine that never downloaded them.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("PIX2CYCLE_METRICS_WEIGHTS", raising=False)
    root = checkout_copy(tmp_path / "checkout")
    stage(doc, root)
    skipped = run_doc(doc, root, capsys)
    with capsys.disabled():
        for line in skipped:
            print(f"\n  docs test skipped {line}", end="")


def test_quick_start_offline(tmp_path, capsys, monkeypatch):
    """scripts/quickstart.sh without its install step (SKIP_INSTALL=1, as the README offers): the
    commands it runs, recorded by a stand-in interpreter, then run here; no URL, no traceback."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    root = checkout_copy(tmp_path / "checkout")
    log, recorder = tmp_path / "commands.jsonl", tmp_path / "python"
    recorder.write_text(f"#!{sys.executable}\nimport json, sys\n"
                        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    recorder.chmod(recorder.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "SKIP_INSTALL": "1", "PYTHON": str(recorder)}
    result = subprocess.run(["bash", "scripts/quickstart.sh"], cwd=root, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    commands = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c[0] for c in commands] == ["datasets/make_demo_data.py", "train.py", "test.py", "train.py", "test.py"]
    printed = ""
    for argv in commands:
        printed += run_command(root, Command(0, shlex.join(["python", *argv])), {}, capsys)
    for bad in (*FORBIDDEN, "://", "error:"):
        assert bad not in printed, bad
    for gallery in re.findall(r"^  (results/\S+/index.html)$", result.stdout, re.M):
        assert (root / gallery).is_file(), gallery
    assert "metrics over 8 image(s): l1 " in printed  # pix2pix on the demo pairs
