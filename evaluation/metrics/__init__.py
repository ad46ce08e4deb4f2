"""Evaluation metrics: paired (L1, PSNR, SSIM, LPIPS) and distribution-level (FID, KID).

Usage::

    suite = MetricSuite(parse_metric_names("psnr,ssim,fid"), device="cuda", weights_dir=None)
    for line in describe_unavailable(suite.unavailable):  # reporting.scores
        print(line)                                # e.g. missing Inception weights, once
    for batch in loader:
        scores = suite.update(fake_B, real=real_B)  # one dict per image, e.g. {"psnr": 23.4, ...}
    suite.add_target_domain(more_real_B)            # unpaired target-domain reals (CycleGAN)
    print(summarize(suite.compute()))               # "psnr 23.41 ± 1.20 | ssim 0.612 ± 0.050 | fid 84.2"

Libraries, and why:

* **torchmetrics** for SSIM (its Gaussian-window SSIM map, cropped to the valid region so it
  equals scikit-image / the reference MATLAB code) and for LPIPS (its vendored copy of the
  reference ``lpips`` network, which ships the linear calibration layers, so only the
  torchvision backbone has to be found). Already a PyTorch-native, well-tested dependency.
* **torch-fidelity** for FID and KID: its InceptionV3 is the TensorFlow FID network ported
  bit-exactly (so numbers match the published FID code), and its FID/KID functions work on
  feature arrays we give them, so any feature extractor can be plugged in. Its KID draws
  subsets from a private seeded NumPy generator: deterministic, global RNG untouched
  (torchmetrics' KID uses the global torch RNG, which would disturb training).
* L1 and PSNR are one line each and computed here; tests check them against scikit-image.

All computations run under ``torch.no_grad`` and restore the torch random state, so
evaluating during training leaves the training random stream as it was.

Adding a metric: one ``METRICS.add`` in ``registry.py``, whose entry carries its compute
function (a per-image one next to the others in ``paired.py``, a set-level one in
``distribution.py``). Console lines and gallery cells (``summarize``, ``describe_unavailable``)
are ``reporting.scores``'s.
"""

from evaluation.metrics.paired import PSNR_CAP_DB
from evaluation.metrics.registry import LPIPS_BACKBONES, METRICS, MetricSpec, parse_metric_names
from evaluation.metrics.suite import MetricSuite
from evaluation.metrics.weights import ENV_VAR, WeightsUnavailable, search_dirs, weights_file

__all__ = [
    "ENV_VAR",
    "LPIPS_BACKBONES",
    "METRICS",
    "PSNR_CAP_DB",
    "MetricSpec",
    "MetricSuite",
    "WeightsUnavailable",
    "parse_metric_names",
    "search_dirs",
    "weights_file",
]
