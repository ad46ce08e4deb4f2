"""Evaluation metrics: known answers, library references, weights lookup and safety, RNG isolation.

No test downloads anything: ``TORCH_HOME`` points into a temporary folder, FID/KID run with a
tiny convolutional feature extractor, and pretrained files are random weights the tests write.
"""

from __future__ import annotations

import io
import math
import os
import urllib.error

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from evaluation.metrics import (
    ENV_VAR,
    METRICS,
    PSNR_CAP_DB,
    MetricSuite,
    parse_metric_names,
    weights_file,
)
from reporting.scores import describe_unavailable, summarize
from util.errors import UserError

ALEXNET_FILE = weights_file("alex").filename
INCEPTION_FILE = weights_file("inception").filename


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path, monkeypatch):
    """No real cache or user folder is seen, and nothing is written outside tmp_path."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def alexnet_weights_dir(tmp_path_factory):
    """A folder holding torchvision AlexNet weights (random values) under the real file name.

    The big fully connected layers LPIPS does not use are left out but one, to keep the file small
    while still checking that extra keys are ignored.
    """
    import torchvision
    folder = tmp_path_factory.mktemp("alexnet_weights")
    torch.manual_seed(0)
    state = torchvision.models.alexnet(weights=None).state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith(("classifier.1", "classifier.4"))},
               folder / ALEXNET_FILE)
    return folder


class TinyFeatures(nn.Module):
    """A small fixed conv net standing in for InceptionV3: images -> 16-d feature vectors."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
        self.seen_grad_enabled: list = []
        self.seen_channels: list = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen_grad_enabled.append(torch.is_grad_enabled())
        self.seen_channels.append(x.shape[1])
        return F.relu(self.conv2(F.relu(self.conv1(x)))).mean(dim=(2, 3))


class MeanAbsLpips(nn.Module):
    """An injected stand-in for LPIPS: mean absolute difference, shaped (B, 1, 1, 1) like LPIPS."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).abs().mean(dim=(1, 2, 3), keepdim=True)


def images(n: int, size: int = 32, channels: int = 3, seed: int = 0, low: float = -1.0, high: float = 1.0):
    """Smooth random images in [low, high] (upsampled noise, so SSIM has structure to see)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, channels, size // 4, size // 4, generator=generator)
    fine = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return low + (high - low) * fine


def noisy(x: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=generator)).clamp(-1, 1)


# ---------------------------------------------------------------- table and names

def test_metric_table():
    assert list(METRICS) == ["l1", "psnr", "ssim", "lpips", "fid", "kid"]
    assert {n for n, s in METRICS.items() if s.higher_is_better} == {"psnr", "ssim"}
    for spec in METRICS.values():
        assert spec.kind in {"paired", "distribution"} and spec.per_image == (spec.kind == "paired")
        assert f"{1.5:{spec.fmt}}"


def test_a_metric_is_one_registry_entry(monkeypatch):
    """A new metric needs only its entry: the suite computes it and reports it in its format."""
    from evaluation.metrics import MetricSpec
    max_error = MetricSpec("paired", False, True, ".2f", "largest absolute error",
                           lambda fake, real: (fake - real).abs().flatten(1).amax(dim=1))
    monkeypatch.setitem(METRICS._items, "max_error", max_error)
    fake = images(2)
    real = fake.clone()
    real[1, 0, 0, 0] += 0.5
    suite = MetricSuite(parse_metric_names("max_error"))
    rows = suite.update(fake, real)
    assert rows[0]["max_error"] == 0.0 and abs(rows[1]["max_error"] - 0.5) < 1e-6
    assert summarize(suite.compute()) == "max_error 0.25 ± 0.25"


def test_parse_metric_names():
    assert parse_metric_names("psnr, SSIM,l1") == ["psnr", "ssim", "l1"]
    assert parse_metric_names("fid,fid,kid") == ["fid", "kid"]
    assert parse_metric_names("") == [] and parse_metric_names("none") == [] and parse_metric_names(" None ") == []
    with pytest.raises(UserError, match="unknown metric 'psnrr'; available: fid, kid, l1, lpips, psnr, ssim \\(or 'none'\\)"):
        parse_metric_names("psnrr,ssim")
    with pytest.raises(UserError, match="unknown metric 'msssim'; available: fid, kid, l1, lpips, psnr, ssim"):
        MetricSuite(["msssim"])
    with pytest.raises(UserError, match="unknown LPIPS backbone 'squeeze'; available: alex, vgg"):
        MetricSuite(["lpips"], lpips_backbone="squeeze")


# ---------------------------------------------------------------- paired metrics

def test_identical_images_give_perfect_scores():
    suite = MetricSuite(["l1", "psnr", "ssim"])
    x = images(3)
    rows = suite.update(x, x.clone())
    assert len(rows) == 3
    for row in rows:
        assert row["l1"] == 0.0 and row["psnr"] == PSNR_CAP_DB and row["ssim"] == pytest.approx(1.0, abs=1e-6)
    results = suite.compute()
    assert results["psnr"] == {"mean": PSNR_CAP_DB, "std": 0.0, "n": 3}
    assert results["l1"]["mean"] == 0.0 and results["ssim"]["mean"] == pytest.approx(1.0, abs=1e-6)


def test_l1_is_mean_absolute_error_on_unit_scale():
    real = images(2, low=-0.5, high=0.5)
    rows = MetricSuite(["l1"]).update(real + 0.2, real)  # 0.2 on [-1, 1] is 0.1 on [0, 1]
    assert [r["l1"] for r in rows] == pytest.approx([0.1, 0.1], abs=1e-6)


def test_psnr_matches_noise_level_and_references():
    from skimage.metrics import peak_signal_noise_ratio as skimage_psnr
    from torchmetrics.functional.image import peak_signal_noise_ratio as torchmetrics_psnr
    sigma01 = 0.04  # noise std on the [0, 1] scale; the images stay inside [0.25, 0.75], so no clipping
    real = images(3, size=128, low=-0.5, high=0.5)
    fake = noisy(real, 2 * sigma01)
    scores = torch.tensor([r["psnr"] for r in MetricSuite(["psnr"]).update(fake, real)], dtype=torch.float64)
    real01, fake01 = (real.double() + 1) / 2, (fake.double() + 1) / 2
    mse = (fake01 - real01).pow(2).mean(dim=(1, 2, 3))
    assert scores.tolist() == pytest.approx((10 * torch.log10(1 / mse)).tolist(), abs=1e-3)
    assert scores.tolist() == pytest.approx([10 * math.log10(1 / sigma01**2)] * 3, abs=0.1)
    reference = [skimage_psnr(real01[i].numpy(), fake01[i].numpy(), data_range=1.0) for i in range(3)]
    assert scores.tolist() == pytest.approx(reference, abs=1e-3)
    tm = torchmetrics_psnr(fake01, real01, data_range=1.0, reduction="none", dim=(1, 2, 3))
    assert scores.tolist() == pytest.approx(tm.tolist(), abs=1e-3)


@pytest.mark.parametrize("channels", [3, 1])
def test_ssim_matches_skimage(channels):
    from skimage.metrics import structural_similarity
    real = images(3, size=48, channels=channels, seed=3)
    fake = noisy(real, 0.2, seed=4)
    scores = [r["ssim"] for r in MetricSuite(["ssim"]).update(fake, real)]
    for i, score in enumerate(scores):
        a = ((real[i].double() + 1) / 2).numpy()
        b = ((fake[i].double() + 1) / 2).numpy()
        kwargs = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
        if channels == 1:
            reference = structural_similarity(a[0], b[0], **kwargs)
        else:
            reference = structural_similarity(a, b, channel_axis=0, **kwargs)
        assert score == pytest.approx(reference, abs=1e-5)
    assert 0.2 < min(scores) < max(scores) < 0.99


def test_paired_metrics_skip_what_does_not_fit_and_say_why():
    suite = MetricSuite(["psnr", "ssim"])
    small = images(2, size=8)
    rows = suite.update(small, noisy(small, 0.1))
    assert all("psnr" in r and "ssim" not in r for r in rows)
    results = suite.compute()
    assert results["psnr"]["n"] == 2
    assert "at least 11x11" in results["ssim"]["unavailable"]
    suite.reset()
    assert suite.update(images(2, size=16), images(2, size=32)) == [{}, {}]
    assert "do not match" in suite.compute()["psnr"]["unavailable"]
    suite.reset()
    assert suite.update(images(2)) == [{}, {}]
    assert suite.compute()["psnr"] == {"unavailable": "no (fake, real) image pairs were given"}


def test_injected_lpips_net_gives_per_image_scores():
    real = images(2, low=-0.5, high=0.5)
    fake = real + torch.tensor([0.1, 0.3]).view(2, 1, 1, 1)
    rows = MetricSuite(["lpips"], lpips_net=MeanAbsLpips()).update(fake, real)
    assert [r["lpips"] for r in rows] == pytest.approx([0.1, 0.3], abs=1e-5)


# ---------------------------------------------------------------- FID and KID

def _frechet_reference(f1: np.ndarray, f2: np.ndarray) -> float:
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((f1.mean(0) - f2.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def _kid_reference(f1: np.ndarray, f2: np.ndarray) -> float:
    """Unbiased MMD^2 with the polynomial kernel (x.y / d + 1)^3 on all samples."""
    def k(a, b):
        return (a @ b.T / a.shape[1] + 1) ** 3
    m = len(f1)
    kxx, kyy, kxy = k(f1, f1), k(f2, f2), k(f1, f2)
    return float((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m**2)


def test_fid_kid_identical_sets_are_zero_and_shifted_sets_are_not():
    extractor = TinyFeatures()
    real = images(24, seed=5)
    same = MetricSuite(["fid", "kid"], feature_extractor=extractor)
    for start in range(0, 24, 8):  # several batches, paired real as the target domain
        same.update(real[start:start + 8], real[start:start + 8])
    shifted = MetricSuite(["fid", "kid"], feature_extractor=extractor)
    shifted.update(real * 0.5 + 0.4, target_domain=real)
    r_same, r_shift = same.compute(), shifted.compute()
    assert r_same["fid"]["n_fake"] == r_same["fid"]["n_real"] == 24
    assert abs(r_same["fid"]["value"]) < 1e-6
    assert r_shift["fid"]["value"] > 0.1 and r_shift["fid"]["value"] > 1e4 * abs(r_same["fid"]["value"])
    # KID is unbiased: on identical sets it is near 0 (and may be slightly negative), not exactly 0
    assert abs(r_same["kid"]["mean"]) < 0.01 * r_shift["kid"]["mean"]


def test_fid_and_kid_equal_direct_computation_on_the_same_features():
    extractor = TinyFeatures()
    fake, real = images(20, seed=6), images(20, seed=7, low=-0.6, high=1.0)
    suite = MetricSuite(["fid", "kid"], feature_extractor=extractor)
    suite.update(fake[:10])
    suite.update(fake[10:])
    suite.add_target_domain(real)
    results = suite.compute()
    with torch.no_grad():
        f_fake, f_real = extractor(fake).double().numpy(), extractor(real).double().numpy()
    assert results["fid"]["value"] == pytest.approx(_frechet_reference(f_fake, f_real), rel=1e-6)
    # the subset size is all 20 samples, so every KID subset is the whole set: std 0
    assert results["kid"]["subset_size"] == 20
    assert results["kid"]["mean"] == pytest.approx(_kid_reference(f_fake, f_real), rel=1e-6)
    assert results["kid"]["std"] == pytest.approx(0.0, abs=1e-12)


def test_small_sets_adapt_kid_subset_and_refuse_fid_below_two():
    suite = MetricSuite(["psnr", "fid", "kid"], feature_extractor=TinyFeatures())
    real = images(5, seed=8)
    suite.update(noisy(real, 0.1), real)
    suite.add_target_domain(images(2, seed=9))
    results = suite.compute()
    assert results["kid"]["subset_size"] == 5 and results["kid"]["n_real"] == 7
    assert math.isfinite(results["fid"]["value"])
    suite.reset()
    suite.update(real[:1], real[:1])
    results = suite.compute()
    assert "at least 2" in results["fid"]["unavailable"] and "at least 2" in results["kid"]["unavailable"]
    assert results["psnr"]["n"] == 1


@pytest.mark.parametrize("channels", [1, 4])
def test_feature_extractor_gets_three_channels(channels):
    extractor = TinyFeatures()
    suite = MetricSuite(["fid"], feature_extractor=extractor)
    suite.update(images(4, channels=channels, seed=10))
    suite.add_target_domain(images(4, channels=channels, seed=11))
    assert math.isfinite(suite.compute()["fid"]["value"])
    assert set(extractor.seen_channels) == {3}


# ---------------------------------------------------------------- weights: missing, found, refused

def test_missing_weights_make_only_those_metrics_unavailable(tmp_path):
    empty = tmp_path / "my_weights"
    empty.mkdir()
    suite = MetricSuite(["psnr", "lpips", "fid", "kid"], weights_dir=str(empty), download=False)
    assert set(suite.unavailable) == {"lpips", "fid", "kid"}
    assert suite.unavailable["fid"] == suite.unavailable["kid"]
    for name, filename in [("fid", INCEPTION_FILE), ("lpips", ALEXNET_FILE)]:
        reason, detail = suite.unavailable[name], suite.unavailable_detail[name]
        assert filename in reason and "docs/metrics.md" in reason and str(empty) not in reason  # one short line
        assert str(empty) in detail and ENV_VAR in detail and "--metrics_weights" in detail
        assert os.path.join(str(tmp_path / "torch_home"), "hub", "checkpoints") in detail
    lines = describe_unavailable(suite.unavailable)
    assert len(lines) == 2 and any(line.startswith("skipped fid, kid: weights file") for line in lines)
    assert all(len(line) < 140 for line in lines)
    real = images(2)
    assert all(set(r) == {"psnr"} for r in suite.update(noisy(real, 0.1), real))
    results = suite.compute()
    assert results["psnr"]["n"] == 2
    assert results["fid"] == {"unavailable": suite.unavailable["fid"], "detail": suite.unavailable_detail["fid"]}
    assert summarize(results).endswith("| lpips n/a | fid n/a | kid n/a")


def test_nothing_is_downloaded_unless_asked(monkeypatch):
    def offline(url, *args, **kwargs):
        raise AssertionError(f"{url} fetched without download=True")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    suite = MetricSuite(["lpips"])
    assert "not found (--download_weights fetches it;" in suite.unavailable["lpips"]
    assert weights_file("alex").url in suite.unavailable_detail["lpips"]


def test_failed_download_is_reported(monkeypatch):
    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    suite = MetricSuite(["lpips"], download=True)
    assert "download failed (URLError)" in suite.unavailable["lpips"]
    assert "download from https://" in suite.unavailable_detail["lpips"] and "no network" in suite.unavailable_detail["lpips"]


def test_download_goes_to_hub_cache_in_one_line_and_is_loaded(monkeypatch, alexnet_weights_dir, capfd):
    """A real fetch (torch.hub's downloader on a file:// address): one line of ours, none of torch's."""
    from evaluation.metrics import weights
    url = (alexnet_weights_dir / ALEXNET_FILE).as_uri()
    monkeypatch.setitem(weights._SOURCES, "alex", (lambda: url, "LPIPS backbone"))
    capfd.readouterr()
    assert MetricSuite(["lpips"], download=True).unavailable == {}
    out, err = capfd.readouterr()
    target = os.path.join(torch.hub.get_dir(), "checkpoints", ALEXNET_FILE)
    assert (out + err).splitlines() == [f"downloading {ALEXNET_FILE} (LPIPS backbone) from {url} to "
                                        f"{os.path.dirname(target)}"]
    assert os.path.isfile(target)
    assert MetricSuite(["lpips"]).unavailable == {}  # found in the cache from now on, no second fetch
    assert capfd.readouterr() == ("", "")


def test_lpips_weights_found_in_weights_dir_and_loaded_safely(monkeypatch, alexnet_weights_dir):
    real_load, calls = torch.load, []

    def spy_load(f, *args, **kwargs):
        calls.append((f, kwargs.get("weights_only")))
        return real_load(f, *args, **kwargs)
    monkeypatch.setattr(torch, "load", spy_load)
    suite = MetricSuite(["lpips"], weights_dir=str(alexnet_weights_dir), download=False)
    assert suite.unavailable == {}
    assert (str(alexnet_weights_dir / ALEXNET_FILE), True) in calls
    user_files = [(f, w) for f, w in calls if str(alexnet_weights_dir) in str(f)]
    assert user_files and all(w is True for f, w in user_files)
    saved = real_load(alexnet_weights_dir / ALEXNET_FILE, weights_only=True)
    backbone = suite._lpips.net.state_dict()  # LPIPS slices keep torchvision's layer numbers
    assert torch.equal(backbone["slice1.0.weight"], saved["features.0.weight"])
    assert torch.equal(backbone["slice5.10.bias"], saved["features.10.bias"])
    real = images(2)
    rows = suite.update(torch.cat([real[:1], noisy(real[1:], 0.5)]), real)
    assert rows[0]["lpips"] == pytest.approx(0.0, abs=1e-6) and rows[1]["lpips"] > 1e-4


def test_weights_dir_from_environment_variable(monkeypatch, alexnet_weights_dir):
    monkeypatch.setenv(ENV_VAR, str(alexnet_weights_dir))
    assert MetricSuite(["lpips"], download=False).unavailable == {}


class _RunsCode:
    """Unpickling this calls os.mkdir: any side effect proves the pickle was executed."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_malicious_pickle_is_refused(tmp_path):
    folder, marker = tmp_path / "weights", tmp_path / "pwned"
    folder.mkdir()
    torch.save({"features.0.weight": _RunsCode(str(marker))}, folder / ALEXNET_FILE)
    suite = MetricSuite(["psnr", "lpips"], weights_dir=str(folder), download=False)
    assert not marker.exists()
    assert "refused to load" in suite.unavailable["lpips"] and ALEXNET_FILE in suite.unavailable["lpips"]
    real = images(1)
    assert suite.update(real, real) == [{"psnr": PSNR_CAP_DB}]


@pytest.mark.parametrize("content, message", [
    ({"classifier.0.weight": torch.zeros(1)}, "lacks 'features.0.weight'"),
    ({f"features.{i}.{p}": torch.zeros(1) for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")}, "size mismatch"),
])
def test_weights_of_another_network_are_reported(tmp_path, content, message):
    torch.save(content, tmp_path / ALEXNET_FILE)
    suite = MetricSuite(["lpips"], weights_dir=str(tmp_path), download=False)
    assert message in suite.unavailable["lpips"]


def _random_inception_state_dict(monkeypatch) -> dict:
    """torch-fidelity's InceptionV3 layout with random values (its constructor is kept from loading)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    empty = io.BytesIO()
    torch.save({}, empty)
    empty.seek(0)
    with monkeypatch.context() as m:
        m.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty)
    return net.state_dict()


@pytest.mark.slow
def test_inception_weights_found_loaded_and_used(tmp_path, monkeypatch):
    torch.manual_seed(0)
    state = _random_inception_state_dict(monkeypatch)
    torch.save(state, tmp_path / INCEPTION_FILE)
    suite = MetricSuite(["fid", "kid"], weights_dir=str(tmp_path), download=False)
    assert suite.unavailable == {}
    loaded = suite._extractor.inception.state_dict()
    assert all(torch.equal(loaded[k], state[k]) for k in ("Conv2d_1a_3x3.conv.weight", "fc.weight"))
    # one image only: InceptionV3 works at 299x299 whatever the input size, slow on a CPU
    suite.add_target_domain(images(1, size=32, seed=12))
    assert suite._real_features[0].shape == (1, 2048) and torch.isfinite(suite._real_features[0]).all()


# ---------------------------------------------------------------- determinism, RNG, no gradients

def test_rng_state_untouched_and_no_gradients(alexnet_weights_dir):
    extractor = TinyFeatures()  # built before: its layers draw initial weights from the global RNG
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()
    suite = MetricSuite(["l1", "psnr", "ssim", "lpips", "fid", "kid"], weights_dir=str(alexnet_weights_dir),
                        feature_extractor=extractor, download=False)
    assert suite.unavailable == {}
    real = images(4)
    fake = noisy(real, 0.2).requires_grad_(True)
    suite.update(fake, real)
    suite.add_target_domain(images(3, seed=13))
    suite.compute()
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]
    assert extractor.seen_grad_enabled and not any(extractor.seen_grad_enabled)
    assert fake.grad is None


def test_results_are_deterministic_and_reset_clears():
    def run() -> dict:
        suite = MetricSuite(["psnr", "ssim", "fid", "kid"], feature_extractor=TinyFeatures())
        real = images(6, seed=14)
        suite.update(noisy(real, 0.3), real)
        return suite.compute()
    first = run()
    assert run() == first
    suite = MetricSuite(["psnr", "fid"], feature_extractor=TinyFeatures())
    real = images(3)
    suite.update(real, real)
    suite.reset()
    assert "unavailable" in suite.compute()["psnr"] and "unavailable" in suite.compute()["fid"]


def test_summarize_one_line():
    results = {"psnr": {"mean": 23.414, "std": 1.2, "n": 3}, "ssim": {"mean": 0.6121, "std": 0.05, "n": 3},
               "fid": {"value": 84.23, "n_fake": 3, "n_real": 3},
               "kid": {"mean": 0.01234, "std": 0.001, "subset_size": 3, "n_fake": 3, "n_real": 3},
               "lpips": {"unavailable": "weights missing"}}
    assert summarize(results) == "psnr 23.41 ± 1.20 | ssim 0.612 ± 0.050 | fid 84.2 | kid 0.0123 ± 0.0010 | lpips n/a"
    assert summarize({}) == ""
