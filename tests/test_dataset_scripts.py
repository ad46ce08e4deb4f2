"""The scripts in datasets/: demo data, combine, split, download (offline paths only)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO_ROOT, load_script

SCRIPTS = REPO_ROOT / "datasets"
UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: connection refused, no network needed


def run_script(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=REPO_ROOT)


def png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_demo_data_layouts_and_determinism(tmp_path):
    demo = load_script("make_demo_data")
    a = demo.make_demo_dataset(tmp_path / "a", "aligned", n_train=3, n_test=2, size=32, seed=4)
    b = demo.make_demo_dataset(tmp_path / "b", "aligned", n_train=3, n_test=2, size=32, seed=4)
    assert {p.name: len(list(p.iterdir())) for p in a.iterdir()} == {"train": 3, "val": 2, "test": 2}
    for path in (a / "train").iterdir():
        assert path.read_bytes() == (b / "train" / path.name).read_bytes()
    assert Image.open(a / "train" / "0001.png").size == (64, 32)
    other = demo.make_demo_dataset(tmp_path / "c", "aligned", n_train=1, n_test=0, size=32, seed=5)
    assert (other / "train" / "0001.png").read_bytes() != (a / "train" / "0001.png").read_bytes()
    u = demo.make_demo_dataset(tmp_path / "u", "unaligned", n_train=2, n_test=1, size=32)
    assert sorted(p.name for p in u.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert Image.open(u / "trainB" / "0002.png").size == (32, 32)
    with pytest.raises(ValueError):
        demo.make_demo_dataset(tmp_path / "x", "paired")


def test_demo_data_cli_makes_both_layouts(tmp_path):
    result = run_script(str(SCRIPTS / "make_demo_data.py"), "--out", str(tmp_path / "demo"), "--size", "32",
                        "--n_train", "4", "--n_test", "2")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == \
        ["test", "testA", "testB", "train", "trainA", "trainB", "val"]
    label, photo = np.split(np.asarray(Image.open(tmp_path / "demo" / "train" / "0001.png")), 2, axis=1)
    assert len(np.unique(label.reshape(-1, 3), axis=0)) <= 6  # flat label colours
    assert len(np.unique(photo.reshape(-1, 3), axis=0)) > 50  # textured, noisy photo


def test_split_then_combine_round_trip(aligned_dataroot, tmp_path):
    split = load_script("split_aligned")
    assert split.main(["--dataroot", str(aligned_dataroot), "--out", str(tmp_path / "split")]) == 0
    names = sorted(p.name for p in (tmp_path / "split").iterdir())
    assert names == ["testA", "testB", "trainA", "trainB", "valA", "valB"]
    # combine wants A/<split> and B/<split>: rearrange the split output that way
    for side in "AB":
        for phase in ("train", "test"):
            (tmp_path / side).mkdir(exist_ok=True)
            (tmp_path / "split" / f"{phase}{side}").rename(tmp_path / side / phase)
    result = run_script(str(SCRIPTS / "combine_A_and_B.py"), "--fold_A", str(tmp_path / "A"), "--fold_B",
                        str(tmp_path / "B"), "--fold_AB", str(tmp_path / "AB"), "--no_multiprocessing")
    assert result.returncode == 0, result.stderr
    for phase in ("train", "test"):
        for original in (aligned_dataroot / phase).iterdir():
            rebuilt = tmp_path / "AB" / phase / original.name
            assert np.array_equal(np.asarray(Image.open(original)), np.asarray(Image.open(rebuilt)))


def test_split_pair_names_are_ground_truth_pairs(aligned_dataroot, tmp_path):
    from evaluation.evaluator import is_pair
    assert load_script("split_aligned").main(["--dataroot", str(aligned_dataroot), "--out", str(tmp_path / "s"),
                                              "--phases", "val", "--pair_names"]) == 0
    a, b = sorted((tmp_path / "s" / "valA").iterdir()), sorted((tmp_path / "s" / "valB").iterdir())
    assert [p.name for p in a][:1] == ["0001_A.png"] and len(a) == len(b)
    assert all(is_pair(str(x), str(y)) for x, y in zip(a, b))


def test_split_drops_odd_column(tmp_path):
    png(tmp_path / "root" / "train" / "x.png", np.zeros((4, 9, 3), np.uint8))
    assert load_script("split_aligned").split_dataset(tmp_path / "root", tmp_path / "out") == 1
    assert Image.open(tmp_path / "out" / "trainB" / "x.png").size == (4, 4)


def test_combine_use_ab_names_and_problem_pairs(tmp_path, capsys):
    red, blue = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)
    red[..., 0], blue[..., 2] = 255, 255
    for i in range(20):  # enough pairs to go through the process pool
        png(tmp_path / "A" / "train" / f"{i:03d}_A.png", red)
        png(tmp_path / "B" / "train" / f"{i:03d}_B.png", blue)
    png(tmp_path / "A" / "train" / "lonely_A.png", red)
    png(tmp_path / "A" / "train" / "big_A.png", np.zeros((9, 9, 3), np.uint8))
    png(tmp_path / "B" / "train" / "big_B.png", blue)
    combine = load_script("combine_A_and_B")
    args = ["--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"), "--fold_AB", str(tmp_path / "AB"),
            "--use_AB"]
    assert combine.main(args) == 0
    out = tmp_path / "AB" / "train"
    assert len(list(out.iterdir())) == 20 and (out / "007.png").is_file()
    pair = np.asarray(Image.open(out / "007.png"))
    assert pair.shape == (8, 16, 3) and pair[0, 0, 0] == 255 and pair[0, 15, 2] == 255
    err = capsys.readouterr().err
    assert "lonely_A.png: no " in err and "big_A.png: size 9x9 differs" in err
    assert combine.main([*args[:-1], "--num_imgs", "2"]) == 0  # without --use_AB nothing pairs up


def test_download_offline_is_one_clear_line(tmp_path):
    root = tmp_path / "data"
    result = run_script(str(SCRIPTS / "download_dataset.py"), "horse2zebra", "--root", str(root),
                        env={"PIX2CYCLE_DATASET_URL": UNREACHABLE})
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ")  # no "downloading" before it
    assert "cannot download http://127.0.0.1:9/horse2zebra.zip" in errors[0]
    assert "by hand" in errors[0] and str(root) in errors[0]
    assert not root.exists()  # nothing partial left behind


def test_download_shell_wrappers_and_unknown_names(tmp_path):
    root = tmp_path / "kept"
    root.mkdir()
    env = {"PIX2CYCLE_DATASET_URL": UNREACHABLE}
    result = subprocess.run(["bash", str(SCRIPTS / "download_pix2pix_dataset.sh"), "facades", "--root", str(root)],
                            capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert result.returncode == 1 and "cannot download http://127.0.0.1:9/facades.tar.gz" in result.stderr
    assert list(root.iterdir()) == []
    unknown = run_script(str(SCRIPTS / "download_dataset.py"), "horse3zebra", env=env)
    assert unknown.returncode == 1 and "unknown dataset 'horse3zebra'" in unknown.stderr
    assert "horse2zebra" in unknown.stderr and "Traceback" not in unknown.stderr
    wrong_kind = run_script(str(SCRIPTS / "download_dataset.py"), "horse2zebra", "--kind", "pix2pix", env=env)
    assert wrong_kind.returncode == 1 and "unknown pix2pix dataset" in wrong_kind.stderr


def test_download_from_a_local_mirror(tmp_path, monkeypatch):
    """The full path, archive to unpacked folder, with file:// URLs instead of the network."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    image = io.BytesIO()
    Image.fromarray(np.zeros((4, 8, 3), np.uint8)).save(image, format="PNG")
    with tarfile.open(mirror / "facades.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("facades/train/1.png")
        info.size = len(image.getvalue())
        tf.addfile(info, io.BytesIO(image.getvalue()))
    with zipfile.ZipFile(mirror / "mini.zip", "w") as zf:
        zf.writestr("mini/trainA/1.png", image.getvalue())
        zf.writestr("mini/testB/2.png", image.getvalue())
    monkeypatch.setenv("PIX2CYCLE_DATASET_URL", mirror.as_uri() + "/")
    download = load_script("download_dataset")
    root = tmp_path / "datasets"
    assert download.main(["facades", "--root", str(root)]) == 0
    assert download.main(["mini", "--root", str(root), "--kind", "cyclegan"]) == 0
    assert (root / "facades" / "train" / "1.png").is_file()
    assert sorted(p.name for p in (root / "mini").iterdir()) == ["SHA256SUMS", "testB", "trainA"]
    assert sorted(p.name for p in root.iterdir()) == ["facades", "mini"]  # no temporary files left
