"""Per-image metrics between a translated image and its ground truth (pix2pix).

All functions take ``fake`` and ``real`` of shape (B, C, H, W) in the model's range [-1, 1]
and return a (B,) tensor, one score per image. Conventions (see docs/metrics.md):

* **L1**: mean absolute error on the [0, 1] scale, i.e. half the value of the training
  L1 loss, which works on [-1, 1]. 0 is perfect; 1 is black vs white everywhere.
* **PSNR**: ``10 log10(1 / MSE)`` on [0, 1] (data range 1.0), over all channels and pixels;
  identical images give ``PSNR_CAP_DB`` instead of infinity so means and JSON stay finite.
* **SSIM**: Wang et al. 2004 with the standard Gaussian window (11 taps, sigma 1.5,
  K1=0.01, K2=0.03) on [0, 1], averaged over channels and over the pixels whose window lies
  inside the image (the 'valid' region, as in the reference MATLAB code and
  ``skimage.metrics.structural_similarity(gaussian_weights=True, use_sample_covariance=False)``).
  The SSIM map itself comes from torchmetrics.
"""

from __future__ import annotations

import torch
from torch import Tensor

PSNR_CAP_DB = 100.0  # MSE floor 1e-10: far above any real result, and finite
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def to_unit(images: Tensor) -> Tensor:
    """Map [-1, 1] images to [0, 1], clamping values a generator may overshoot."""
    return (images.clamp(-1.0, 1.0) + 1.0) / 2.0


def to_rgb(images: Tensor) -> Tensor:
    """Three channels for ImageNet-trained networks: gray is repeated, extra channels dropped."""
    if images.shape[1] >= 3:
        return images[:, :3]
    return images[:, :1].expand(-1, 3, -1, -1)


def l1_per_image(fake: Tensor, real: Tensor) -> Tensor:
    """Mean absolute error on the [0, 1] scale, per image."""
    return (to_unit(fake) - to_unit(real)).abs().flatten(1).mean(dim=1)


def psnr_per_image(fake: Tensor, real: Tensor) -> Tensor:
    """PSNR in dB with data range 1.0, per image, capped at ``PSNR_CAP_DB``."""
    mse = (to_unit(fake) - to_unit(real)).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(10.0 ** (-PSNR_CAP_DB / 10.0)))


def ssim_per_image(fake: Tensor, real: Tensor) -> Tensor:
    """SSIM on [0, 1] with an 11x11 Gaussian window (sigma 1.5), mean over the valid region."""
    from torchmetrics.functional.image import structural_similarity_index_measure
    if min(fake.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, "
                         f"got {tuple(fake.shape[-2:])}")
    _, ssim_map = structural_similarity_index_measure(
        to_unit(fake), to_unit(real), gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_WINDOW,
        data_range=1.0, k1=0.01, k2=0.03, reduction="none", return_full_image=True)
    # torchmetrics averages over the reflect-padded border too; the standard keeps only the
    # pixels whose whole window is inside the image.
    pad = (SSIM_WINDOW - 1) // 2
    return ssim_map[..., pad:-pad, pad:-pad].flatten(1).mean(dim=1)


def lpips_per_image(net: torch.nn.Module, fake: Tensor, real: Tensor) -> Tensor:
    """LPIPS distance from ``net`` (inputs RGB in [-1, 1]), per image."""
    out = net(to_rgb(fake.clamp(-1.0, 1.0)), to_rgb(real.clamp(-1.0, 1.0)))
    return out.reshape(fake.shape[0], -1).mean(dim=1)

