"""The metric table: one entry per metric, carrying how it is computed and how it is read.

Adding a metric is one ``METRICS.add`` here. A paired metric's ``compute(fake, real)``
returns one score per image (a (B,) tensor); one that needs a pretrained network names it
in ``network`` and receives it first, ``compute(net, fake, real)``. A distribution metric's
``compute(fake_features, real_features)`` gets the Inception features of the two sets and
returns its result fields (``{"value": ...}`` or ``{"mean": ..., "std": ...}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional

from evaluation.metrics import distribution, paired
from util.registry import Registry


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is computed and read."""

    kind: str  # "paired": fake vs its ground truth; "distribution": fake set vs target-domain set
    higher_is_better: bool
    per_image: bool  # a score per image (mean/std over images) or one value for the whole set
    fmt: str  # number format of its results in reports
    description: str
    compute: Callable
    network: Optional[str] = None  # the pretrained network a paired metric is computed with


def _fid(fake_features, real_features) -> dict:
    return {"value": distribution.frechet_distance(fake_features, real_features)}


_NONE = ("", "none")
METRICS = Registry("metric", hint=" (or 'none')")
METRICS.add("l1", MetricSpec("paired", False, True, ".4f", "mean absolute error on [0, 1]", paired.l1_per_image))
METRICS.add("psnr", MetricSpec("paired", True, True, ".2f", "peak signal-to-noise ratio in dB, data range 1",
                               paired.psnr_per_image))
METRICS.add("ssim", MetricSpec("paired", True, True, ".3f", "structural similarity, Gaussian window 11, sigma 1.5",
                               paired.ssim_per_image))
METRICS.add("lpips", MetricSpec("paired", False, True, ".3f", "learned perceptual distance (AlexNet backbone)",
                                paired.lpips_per_image, network="lpips"))
METRICS.add("fid", MetricSpec("distribution", False, False, ".1f", "Fréchet Inception distance", _fid))
METRICS.add("kid", MetricSpec("distribution", False, False, ".4f", "kernel Inception distance",
                              distribution.kernel_inception_distance))

# LPIPS backbone name -> the torchvision network whose ImageNet weights it reads.
LPIPS_BACKBONES = Registry("LPIPS backbone")
LPIPS_BACKBONES.add("alex", "AlexNet")
LPIPS_BACKBONES.add("vgg", "VGG16")


def parse_metric_names(spec: str) -> List[str]:
    """``"psnr, ssim,l1"`` -> ``["psnr", "ssim", "l1"]``; ``""`` or ``"none"`` -> ``[]``."""
    if spec.strip().lower() in _NONE:
        return []
    names: List[str] = []
    for raw in spec.split(","):
        name = raw.strip().lower()
        METRICS.get(name)  # an unknown name is refused, listing the known ones
        if name not in names:
            names.append(name)
    return names
