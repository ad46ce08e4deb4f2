"""Set-level metrics between translated images and real images of the target domain (CycleGAN).

Images are turned into feature vectors by a network (InceptionV3 pool features by default),
and two sets of features are compared with torch-fidelity's implementations:

* **FID** (Heusel et al. 2017): Fréchet distance between Gaussians fitted to the two sets.
  Biased for small sets: only compare FIDs computed on the same number of images.
* **KID** (Binkowski et al. 2018): unbiased MMD with the cubic polynomial kernel, averaged
  over random subsets drawn with a fixed seed (a private NumPy generator, so no global random
  state is touched). Reported as mean and std over the subsets.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor, nn

from evaluation.metrics.paired import to_rgb

KID_SUBSETS = 100
KID_MAX_SUBSET_SIZE = 1000
KID_SEED = 2020  # torch-fidelity's default, so results match its command line tool


class InceptionFeatures(nn.Module):
    """Feeds [-1, 1] float images to torch-fidelity's InceptionV3 as the 8-bit images it expects.

    Quantising to uint8 gives the same numbers as computing FID on the saved PNG files.
    """

    def __init__(self, inception: nn.Module) -> None:
        super().__init__()
        self.inception = inception

    def forward(self, images: Tensor) -> Tensor:
        images_uint8 = ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
        return self.inception(images_uint8)[0]


def extract_features(extractor: nn.Module, images: Tensor) -> Tensor:
    """(B, D) float64 CPU features of RGB versions of ``images`` (B, C, H, W) in [-1, 1]."""
    features = extractor(to_rgb(images))
    return features.reshape(images.shape[0], -1).to("cpu", torch.float64)


def frechet_distance(fake_features: Tensor, real_features: Tensor) -> float:
    """FID between two (N, D) feature sets, each with N >= 2."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    stats_fake = fid_features_to_statistics(fake_features.double())
    stats_real = fid_features_to_statistics(real_features.double())
    out = fid_statistics_to_metric(stats_fake, stats_real, verbose=False)
    return float(next(iter(out.values())))


def kernel_inception_distance(fake_features: Tensor, real_features: Tensor) -> Dict[str, float]:
    """KID mean and std over ``KID_SUBSETS`` subsets of min(n_fake, n_real, 1000) samples."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
    subset_size = min(len(fake_features), len(real_features), KID_MAX_SUBSET_SIZE)
    out = kid_features_to_metric(
        fake_features.double(), real_features.double(), kid_subsets=KID_SUBSETS, kid_subset_size=subset_size,
        kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1,
        rng_seed=KID_SEED, verbose=False)
    return {"mean": float(out[KEY_METRIC_KID_MEAN]), "std": float(out[KEY_METRIC_KID_STD]),
            "subset_size": subset_size}
