"""Metrics in test.py and validation during training (--val_freq), on tiny generated data.

Every test runs offline: no weights are found and nothing is downloaded, so LPIPS/FID/KID
are unavailable unless a test injects a small feature extractor.
"""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import test as test_script
import train as train_script
from engine import validation
from evaluation import evaluator as evaluation
from evaluation.metrics import MetricSuite
from options import parse_options
from tests.helpers import tiny_args


def go_offline(mp: pytest.MonkeyPatch, folder: Path) -> None:
    """No weights anywhere, no downloads: the state of a machine without internet."""
    mp.delenv("PIX2CYCLE_METRICS_WEIGHTS", raising=False)
    mp.setattr(torch.hub, "get_dir", lambda: str(folder))

    def no_download(url, *args, **kwargs):
        raise OSError(f"offline test: {url} not downloaded")

    mp.setattr(torch.hub, "load_state_dict_from_url", no_download)


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    go_offline(monkeypatch, tmp_path / "hub")


def p2p_args(root, ckpt, name, *extra):
    return tiny_args("pix2pix", root, ckpt, name, "--n_epochs", "1", "--n_epochs_decay", "1",
                     "--max_dataset_size", "2", "--seed", "3", "--save_epoch_freq", "1",
                     "--display_freq", "100", "--update_html_freq", "100", *extra)


@pytest.fixture(scope="module")
def p2p_runs(aligned_dataroot, tmp_path_factory):
    """The same 2-epoch pix2pix run twice: with validation every epoch, and without."""
    ckpt = tmp_path_factory.mktemp("p2p")
    with pytest.MonkeyPatch.context() as mp:
        go_offline(mp, ckpt / "hub")
        assert train_script.main(p2p_args(aligned_dataroot, ckpt, "val", "--val_freq", "1")) == 0
        assert train_script.main(p2p_args(aligned_dataroot, ckpt, "plain")) == 0
    return ckpt


def run_test(root, ckpt, results, name, model, *extra):
    args = ["--dataroot", str(root), "--name", name, "--model", model, "--checkpoints_dir", str(ckpt),
            "--results_dir", str(results), "--gpu_ids", "-1", "--num_threads", "0", *extra]
    assert test_script.main(args) == 0


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0


def test_default_metrics_follow_the_model(aligned_dataroot, unaligned_dataroot, tmp_path):
    paired = "l1,psnr,ssim,lpips"
    for model, root, metrics, best in [("pix2pix", aligned_dataroot, paired, "psnr"),
                                       ("template", aligned_dataroot, paired, "psnr"),
                                       ("cycle_gan", unaligned_dataroot, "fid,kid," + paired, "fid,psnr")]:
        args = ["--dataroot", str(root), "--model", model, "--checkpoints_dir", str(tmp_path)]
        assert parse_options(args, is_train=False).metrics == metrics
        opt = parse_options(args, is_train=True)
        assert (opt.metrics, opt.best_metric, opt.val_freq) == (metrics, best, 0)
    single = parse_options(["--dataroot", str(aligned_dataroot), "--model", "test"], is_train=False)
    assert single.metrics == "none"  # one generator, no target images
    assert parse_options(["--dataroot", "x", "--model", "pix2pix", "--val_metrics", "psnr"]).metrics == "psnr"


def test_default_best_metric_works_offline_for_every_model(aligned_dataroot, unaligned_dataroot, label_dataroot,
                                                           tmp_path, capsys):
    """No weights, no network: each model's default --best_metric still keeps best weights (by a
    paired metric where FID cannot be computed), given data with ground-truth pairs."""
    from models import MODELS
    paired_unaligned = tmp_path / "pairs"  # the maps_unaligned naming: <x>_A ~ <x>_B
    for side in "AB":
        (paired_unaligned / f"train{side}").mkdir(parents=True)
        for i, src in enumerate(sorted((unaligned_dataroot / f"train{side}").iterdir())[:4]):
            shutil.copy(src, paired_unaligned / f"train{side}" / f"{i}_{side}.png")
    from pix2cycle import compatibility

    roots = {"aligned": aligned_dataroot, "unaligned": paired_unaligned, "colorization": unaligned_dataroot,
             "label": label_dataroot}
    validation = next(c for c in compatibility.columns() if c.name == "validation")
    checked = []
    for model in MODELS.names():
        if model == "test" or parse_options(["--dataroot", "x", "--model", model]).metrics == "none":
            continue  # test.py only; pix2pix3d has no default metrics (--val_freq asks for them by name)
        if compatibility.cell(model, validation) is not None:
            continue  # validation refused, with its reason (tests/test_compatibility.py checks the refusal)
        mode = parse_options(["--dataroot", "x", "--model", model]).dataset_mode
        args = tiny_args(model, roots[mode], tmp_path / "c", model, "--n_epochs", "1", "--n_epochs_decay", "0",
                         "--max_dataset_size", "4", "--val_freq", "1", "--val_fraction", "0.5", "--display_freq",
                         "100", "--update_html_freq", "100", "--print_freq", "100")
        assert train_script.main(args) == 0, model
        best = json.loads((tmp_path / "c" / model / "best.json").read_text())
        assert best["metric"] in ("psnr", "l1"), (model, best["metric"])
        checked.append(model)
    assert {"pix2pix", "cycle_gan", "cut", "colorization", "template"} <= set(checked)
    out = capsys.readouterr().out
    assert "best weights are chosen by psnr (not computed: fid)" in out  # said for the two-way models
    assert "Traceback" not in out and "http" not in out


def test_pairs_are_the_same_file_or_stems_with_A_and_B():
    assert evaluation.is_pair("d/test/1.jpg", "d/test/1.jpg")
    assert evaluation.is_pair("d/testA/401_A.jpg", "d/testB/401_B.jpg")
    assert evaluation.is_pair("d/testB/401_B.jpg", "d/testA/401_A.jpg")
    assert not evaluation.is_pair("d/testA/0001.png", "d/testB/0001.png")  # numbered unpaired data
    assert not evaluation.is_pair("d/testA/401_A.jpg", "d/testB/402_B.jpg")
    assert not evaluation.is_pair("d/testA/401_A.jpg", "d/testB/401_A.jpg")
    assert not evaluation.is_pair(None, "x_B.png")


def test_held_out_split_is_deterministic_and_disjoint():
    kept, held = validation.split_indices(10, 0.2, seed=5)
    assert (kept, held) == validation.split_indices(10, 0.2, seed=5)
    assert len(held) == 2 and sorted(kept + held) == list(range(10))
    assert validation.split_indices(10, 0.2, seed=6) != (kept, held)
    assert len(validation.split_indices(3, 0.01, seed=0)[1]) == 1  # at least one image

    class Unaligned:  # the attributes hold_out splits per domain
        def __init__(self):
            self.A_paths = [f"{i}_A.png" for i in range(6)]
            self.B_paths = [f"{i}_B.png" for i in range(6)]
            self.A_size = self.B_size = 6

    train, val, what = validation.hold_out(Unaligned(), Unaligned(), 0.34, seed=1)
    assert (train.A_size, val.A_size, val.B_size) == (4, 2, 2) and "2 of 6 A" in what
    assert not set(train.A_paths) & set(val.A_paths)
    assert all(evaluation.is_pair(a, b) for a, b in zip(val.A_paths, val.B_paths))  # pairs stay together


def test_test_py_psnr_ssim_l1_match_the_saved_images(p2p_runs, aligned_dataroot, tmp_path, capsys):
    run_test(aligned_dataroot, p2p_runs, tmp_path, "plain", "pix2pix", "--metrics", "psnr,ssim,l1")
    out_dir = tmp_path / "plain" / "test_latest"
    report = json.loads((out_dir / "metrics.json").read_text())
    assert report["images"] == report["ground_truth_pairs"] == 4
    assert list(report["metrics"]) == ["psnr", "ssim", "l1"]
    psnr, l1 = [], []
    for fake in sorted((out_dir / "images").glob("*_fake_B.png")):
        a, b = png(fake), png(fake.with_name(fake.name.replace("fake_B", "real_B")))
        psnr.append(10 * np.log10(1.0 / np.mean((a - b) ** 2)))
        l1.append(np.mean(np.abs(a - b)))
    m = report["metrics"]
    assert m["psnr"]["n"] == 4 and abs(m["psnr"]["mean"] - np.mean(psnr)) < 0.05  # PNGs are 8-bit
    assert abs(m["psnr"]["std"] - np.std(psnr)) < 0.05
    assert abs(m["l1"]["mean"] - np.mean(l1)) < 2e-3
    assert 0.0 < m["ssim"]["mean"] < 1.0
    html = (out_dir / "index.html").read_text()
    assert html.index('class="summary"') < html.index('class="gallery"')
    assert f"{m['psnr']['mean']:.2f} ± {m['psnr']['std']:.2f}" in html
    shown = [float(v) for v in re.findall(r"<div>psnr: ([\d.]+)</div>", html)]
    assert len(shown) == 4 and np.allclose(shown, psnr, atol=0.05)  # per-image, next to each row
    stems = [f.name[:-len("_fake_B.png")] for f in sorted((out_dir / "images").glob("*_fake_B.png"))]
    kept = report["per_image"]  # and in metrics.json, by image name
    assert sorted(kept) == stems and np.allclose([kept[s]["psnr"] for s in stems], psnr, atol=0.05)
    out = capsys.readouterr().out
    assert f"psnr {m['psnr']['mean']:.2f} ± {m['psnr']['std']:.2f} | ssim" in out

    # Without metrics: no stale metrics.json, and the page has no scores.
    run_test(aligned_dataroot, p2p_runs, tmp_path, "plain", "pix2pix", "--metrics", "none")
    assert not (out_dir / "metrics.json").exists()
    assert 'class="scores"' not in (out_dir / "index.html").read_text()


def test_unavailable_metrics_reported_once_others_computed(p2p_runs, aligned_dataroot, tmp_path, capsys):
    run_test(aligned_dataroot, p2p_runs, tmp_path, "plain", "pix2pix", "--metrics", "psnr,fid,kid,lpips")
    out = capsys.readouterr().out
    assert out.count("skipped fid, kid: weights file") == 1
    assert out.count("skipped lpips: weights file") == 1
    assert out.count("--download_weights") == 2 and "http" not in out
    assert "--metrics_weights" not in out and "docs/metrics.md" in out  # short lines, the story is in the docs
    report = json.loads((tmp_path / "plain" / "test_latest" / "metrics.json").read_text())["metrics"]
    assert report["psnr"]["n"] == 4
    for name in ("fid", "kid", "lpips"):
        assert "weights file" in report[name]["unavailable"] and "--metrics_weights" in report[name]["detail"]
    assert "psnr " in out and "fid" not in out.splitlines()[-2]  # skipped: named once, not again as n/a
    html = (tmp_path / "plain" / "test_latest" / "index.html").read_text()
    assert f'<td title="{report["fid"]["unavailable"]}">n/a</td>' in html  # the reason on hover


def test_nothing_computable_is_said_once_and_writes_no_metrics_json(p2p_runs, aligned_dataroot, tmp_path, capsys):
    """Single images (no targets): one line names the skipped metrics; no empty metrics.json, no n/a."""
    out_dir = tmp_path / "plain" / "test_latest_test"
    out_dir.mkdir(parents=True)
    (out_dir / "metrics.json").write_text("{}")  # an earlier run's
    run_test(aligned_dataroot / "test", p2p_runs, tmp_path, "plain", "test", "--dataset_mode", "single",
             "--model_suffix", "", "--metrics", "l1,psnr,lpips")
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if "l1" in line] == [
        "skipped l1, psnr, lpips: this model has no real images of the target domain to compare with"]
    assert "n/a" not in out and "http" not in out and "no metric could be computed" in out
    assert not (out_dir / "metrics.json").exists()
    assert 'class="summary"' not in (out_dir / "index.html").read_text()


def test_download_weights_fetches_once_with_one_line(p2p_runs, aligned_dataroot, tmp_path, monkeypatch, capfd):
    """--download_weights through test.py: torch.hub's real downloader on a file:// address."""
    import torchvision

    from evaluation.metrics import weights
    source = tmp_path / "published" / weights.weights_file("alex").filename
    source.parent.mkdir()
    torch.save(torchvision.models.alexnet(weights=None).features.state_dict(prefix="features."), source)
    monkeypatch.setitem(weights._SOURCES, "alex", (lambda: source.as_uri(), "LPIPS backbone"))
    capfd.readouterr()
    run_test(aligned_dataroot, p2p_runs, tmp_path, "plain", "pix2pix", "--metrics", "psnr,lpips", "--download_weights")
    out, err = capfd.readouterr()
    assert [line for line in (out + err).splitlines() if "ownloading" in line] == [
        f"downloading {source.name} (LPIPS backbone) from {source.as_uri()} to {tmp_path / 'hub' / 'checkpoints'}"]
    report = json.loads((tmp_path / "plain" / "test_latest" / "metrics.json").read_text())["metrics"]
    assert report["lpips"]["n"] == 4 and "skipped" not in out
    run_test(aligned_dataroot, p2p_runs, tmp_path, "plain", "pix2pix", "--metrics", "lpips")  # now cached
    assert "ownloading" not in "".join(capfd.readouterr())


def test_val_freq_logs_keeps_best_and_does_not_disturb_training(p2p_runs, aligned_dataroot, tmp_path):
    run = p2p_runs / "val"
    for name in ("G", "D"):  # evaluation left the weights (and batch-norm statistics) untouched
        a = torch.load(run / f"latest_net_{name}.pth", weights_only=True)
        b = torch.load(p2p_runs / "plain" / f"latest_net_{name}.pth", weights_only=True)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=f"{name}.{key}")
    rows = [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["kind"] == "val"]
    assert [(r["epoch"], r["total_iters"]) for r in val] == [(1, 2), (2, 4)]
    assert all({"l1", "psnr", "ssim"} <= set(r) and "lpips" not in r for r in val)  # unavailable: skipped
    best = json.loads((run / "best.json").read_text())
    winner = max(val, key=lambda r: r["psnr"])
    assert (best["metric"], best["epoch"], best["higher_is_better"]) == ("psnr", winner["epoch"], True)
    assert best["value"] == pytest.approx(winner["psnr"])
    for name in ("G", "D"):
        assert (run / f"best_net_{name}.pth").read_bytes() == (run / f"{winner['epoch']}_net_{name}.pth").read_bytes()
    assert "validation (epoch: 2, total_iters: 4): l1:" in (run / "loss_log.txt").read_text()
    assert "Validation" in (run / "web" / "index.html").read_text()
    assert not (p2p_runs / "plain" / "best.json").exists()

    # test.py --epoch best loads best_net_G.pth and, on the same images at the same size and
    # with the seed validation used (dropout stays on, as in the reference), reproduces it.
    assert best["seed"] == 3
    run_test(aligned_dataroot, p2p_runs, tmp_path, "val", "pix2pix", "--epoch", "best", "--phase", "val",
             "--metrics", "psnr", "--seed", "3")
    report = json.loads((tmp_path / "val" / "val_best" / "metrics.json").read_text())
    assert report["epoch"] == "best" and report["metrics"]["psnr"]["n"] == 4
    assert report["metrics"]["psnr"]["mean"] == pytest.approx(best["value"], abs=1e-6)


def test_validation_scores_are_what_test_py_gives_after_batched_training(aligned_dataroot, tmp_path):
    """--batch_size 4 training: validation still scores as test.py does (one image at a time,
    batch norm in training mode, test.py's preprocessing), so test.py --epoch best reproduces
    best.json; and test.py --batch_size 4 gives each image the result it gets alone."""
    ckpt, results = tmp_path / "ckpt", tmp_path / "results"
    assert train_script.main(p2p_args(aligned_dataroot, ckpt, "b4", "--val_freq", "1", "--batch_size", "4",
                                      "--max_dataset_size", "8", "--val_metrics", "l1,psnr,ssim")) == 0
    best = json.loads((ckpt / "b4" / "best.json").read_text())
    run_test(aligned_dataroot, ckpt, results, "b4", "pix2pix", "--epoch", "best", "--phase", "val",
             "--metrics", "l1,psnr,ssim", "--seed", "3")
    report = json.loads((results / "b4" / "val_best" / "metrics.json").read_text())["metrics"]
    for name in ("l1", "psnr", "ssim"):
        assert report[name]["mean"] == pytest.approx(best["results"][name]["mean"], abs=1e-6), name

    # Dropout off, so that only batch norm could couple the images of a batch.
    assert train_script.main(p2p_args(aligned_dataroot, ckpt, "nodrop", "--no_dropout", "--batch_size", "4",
                                      "--max_dataset_size", "8")) == 0
    scores = {}
    for batch in ("1", "4"):
        run_test(aligned_dataroot, ckpt, results / batch, "nodrop", "pix2pix", "--phase", "val",
                 "--metrics", "l1,psnr", "--batch_size", batch)
        scores[batch] = json.loads((results / batch / "nodrop" / "val_latest" / "metrics.json").read_text())
        assert scores[batch]["images"] == 4
    for name in ("l1", "psnr"):
        assert scores["4"]["metrics"][name]["mean"] == pytest.approx(scores["1"]["metrics"][name]["mean"],
                                                                     rel=1e-5), name


def test_held_out_slice_and_continue_train_keeps_best(aligned_dataroot, tmp_path, capsys):
    args = p2p_args(aligned_dataroot, tmp_path, "run", "--val_freq", "1", "--val_phase", "nothing_here",
                    "--max_dataset_size", "4", "--val_fraction", "0.25", "--n_epochs_decay", "0",
                    "--val_metrics", "l1,psnr")
    assert train_script.main(args) == 0
    out = capsys.readouterr().out
    assert "1 of 4 held out for validation" in out
    run = tmp_path / "run"
    state = torch.load(run / "latest_checkpoint.pth", weights_only=True)
    assert state["total_iters"] == 3  # the held-out image is not trained on
    best = json.loads((run / "best.json").read_text())
    assert (best["metric"], best["epoch"]) == ("psnr", 1)

    # An unbeatable best must survive --continue_train: no new best files, best.json unchanged.
    best["value"] = 99.0
    (run / "best.json").write_text(json.dumps(best))
    before = (run / "best_net_G.pth").read_bytes()
    assert train_script.main(args + ["--continue_train", "--n_epochs", "2"]) == 0
    val_rows = [r for r in map(json.loads, (run / "loss_log.jsonl").read_text().splitlines()) if r["kind"] == "val"]
    assert [r["epoch"] for r in val_rows] == [1, 2]
    assert json.loads((run / "best.json").read_text())["value"] == 99.0
    assert (run / "best_net_G.pth").read_bytes() == before


class TinyFeatures(torch.nn.Module):
    """A stand-in for InceptionV3: RGB in [-1, 1] -> 8 features."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(),
                                       torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())

    def forward(self, x):
        return self.net(x.float())


def test_cycle_gan_fid_kid_both_directions_and_pairs(unaligned_dataroot, tmp_path, monkeypatch, capsys):
    def suite_with_tiny_features(names, device, weights_dir, download):
        return MetricSuite(names, device=device, weights_dir=weights_dir, feature_extractor=TinyFeatures(),
                           download=download)

    monkeypatch.setattr(evaluation, "make_suite", suite_with_tiny_features)
    # Training data as generated; the test set built from pairs (<x>_A ~ <x>_B) plus one unpaired B.
    root = tmp_path / "data"
    for side in "AB":
        shutil.copytree(unaligned_dataroot / f"train{side}", root / f"train{side}")
        (root / f"test{side}").mkdir()
        for i, src in enumerate(sorted((unaligned_dataroot / f"test{side}").iterdir())[:3]):
            shutil.copy(src, root / f"test{side}" / f"{i:03d}_{side}.png")
    shutil.copy(sorted((unaligned_dataroot / "testB").iterdir())[3], root / "testB" / "extra.png")

    ckpt = tmp_path / "c"
    args = tiny_args("cycle_gan", root, ckpt, "cg", "--n_epochs", "1", "--n_epochs_decay", "0",
                     "--max_dataset_size", "4", "--seed", "1", "--val_freq", "1", "--val_fraction", "0.5",
                     "--display_freq", "100", "--update_html_freq", "100")
    assert train_script.main(args) == 0  # no val folders: 2 of 4 images of each domain held out
    run = ckpt / "cg"
    val = [r for r in map(json.loads, (run / "loss_log.jsonl").read_text().splitlines()) if r["kind"] == "val"]
    assert len(val) == 1 and {"fid_B", "fid_A", "kid_B", "kid_A"} <= set(val[0])
    best = json.loads((run / "best.json").read_text())
    assert best["metric"] == "fid" and best["higher_is_better"] is False
    assert best["value"] == pytest.approx((val[0]["fid_B"] + val[0]["fid_A"]) / 2)  # both directions
    assert (run / "best_net_G_A.pth").is_file() and (run / "best_net_G_B.pth").is_file()

    capsys.readouterr()
    run_test(root, ckpt, tmp_path / "r", "cg", "cycle_gan", "--crop_size", "32")  # default metrics
    out = capsys.readouterr().out
    assert out.count("skipped lpips") == 1
    assert "A->B: fid " in out and "B->A: fid " in out
    report = json.loads((tmp_path / "r" / "cg" / "test_latest" / "metrics.json").read_text())
    m = report["metrics"]
    assert report["ground_truth_pairs"] == 3 and report["images"] == 4
    # A -> B: 3 distinct A images translated (the loader repeats one), 4 real B images.
    assert (m["fid_B"]["n_fake"], m["fid_B"]["n_real"]) == (3, 4)
    assert (m["fid_A"]["n_fake"], m["fid_A"]["n_real"]) == (4, 3)
    assert np.isfinite(m["fid_B"]["value"]) and np.isfinite(m["kid_A"]["mean"])
    assert m["psnr_B"]["n"] == m["psnr_A"]["n"] == 3  # the three <x>_A ~ <x>_B pairs
    assert "unavailable" in m["lpips_B"]
    html = (tmp_path / "r" / "cg" / "test_latest" / "index.html").read_text()
    assert html.count("psnr_B: ") == 3 and "fid_A" in html
