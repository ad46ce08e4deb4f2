"""RGB <-> CIE Lab for the colorization model, with scikit-image's conversions.

The network sees L scaled to [-1, 1] (``L / 50 - 1``) and predicts ab scaled to about
[-1, 1] (``ab / 110``), the scaling of the reference's colorization mode.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from skimage import color

L_SCALE, L_SHIFT, AB_SCALE = 50.0, 1.0, 110.0


def rgb_to_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``3 x H x W`` RGB in [0, 1] -> (L ``1 x H x W``, ab ``2 x H x W``), both scaled."""
    lab = color.rgb2lab(rgb.permute(1, 2, 0).numpy().astype(np.float64))
    lab = torch.from_numpy(lab).permute(2, 0, 1).float()
    return lab[:1] / L_SCALE - L_SHIFT, lab[1:] / AB_SCALE


def rgb_to_l(images: torch.Tensor) -> torch.Tensor:
    """RGB or gray images in [-1, 1] (``N x 3 x H x W`` or ``N x 1 x H x W``) -> their scaled
    L, computed as the colorization data computes it (``rgb_to_lab``), on the input's device.

    A gray value is an RGB colour with three equal channels; its lightness is not linear in it.
    """
    rgb = ((images.detach().float().cpu() + 1.0) / 2.0).clamp(0, 1).expand(-1, 3, -1, -1)
    ls = [rgb_to_lab(image)[0] for image in rgb]
    return torch.stack(ls).to(images.device)


# Gray images (``--dataset_mode single``) are RGB images of three equal channels.
gray_to_l = rgb_to_l


def lab_to_rgb(l_scaled: torch.Tensor, ab_scaled: torch.Tensor) -> torch.Tensor:
    """Batches of scaled L (``N x 1 x H x W``) and ab (``N x 2 x H x W``) -> RGB in [-1, 1],
    every image of the batch converted (on the CPU, then back to the input's device)."""
    lab = torch.cat([(l_scaled.detach().float() + L_SHIFT) * L_SCALE, ab_scaled.detach().float() * AB_SCALE], 1)
    images = []
    for image in lab.cpu().permute(0, 2, 3, 1).numpy().astype(np.float64):
        with warnings.catch_warnings():  # predicted colours outside the sRGB gamut are clipped, as they should be
            warnings.simplefilter("ignore", UserWarning)
            images.append(torch.from_numpy(color.lab2rgb(image)).permute(2, 0, 1).float())
    return (torch.stack(images) * 2.0 - 1.0).to(l_scaled.device)
