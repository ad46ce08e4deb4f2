"""VGG feature (perceptual) and Gram-matrix (style) losses: ``--lambda_perceptual``, ``--lambda_style``.

Johnson et al. 2016 ("Perceptual losses for real-time style transfer"): distances between
VGG-16 activations of the output and of the target (relu1_2, relu2_2, relu3_3, relu4_3),
and between their Gram matrices for style. The weights are torchvision's ImageNet VGG-16,
read from a file: ``--vgg_weights PATH``, else torchvision's file in the torch hub cache.
Nothing is downloaded: without a file the run stops with one ``error:`` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from util.checkpoint import safe_load
from util.errors import UserError

VGG16_FILE = "vgg16-397923af.pth"  # torchvision's name for the ImageNet weights (VGG16_Weights.IMAGENET1K_V1)
LAYERS = (3, 8, 15, 22)  # relu1_2, relu2_2, relu3_3, relu4_3 in vgg16().features
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg_weights_file(path: Optional[str]) -> Path:
    """``path``, else torchvision's VGG-16 file in the torch hub cache; a UserError when neither is there."""
    if path:
        if not Path(path).is_file():
            raise UserError(f"--vgg_weights {path}: no such file")
        return Path(path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    if not cached.is_file():
        raise UserError(f"--lambda_perceptual/--lambda_style need VGG-16 weights: none at {cached}; copy "
                        f"torchvision's {VGG16_FILE} there or pass --vgg_weights PATH (nothing is downloaded)")
    return cached


def vgg16_layers() -> nn.Sequential:
    """``torchvision.models.vgg16().features`` up to relu4_3, without building the classifier."""
    from torchvision.models.vgg import cfgs, make_layers

    return make_layers(cfgs["D"])[:LAYERS[-1] + 1]


def vgg16_features(path: Path) -> nn.Sequential:
    """VGG-16's layers up to relu4_3 with the weights of ``path`` (a torchvision state_dict,
    whole or only its ``features.*`` entries up to that layer)."""
    features = vgg16_layers()
    state = safe_load(path, map_location="cpu")
    wanted = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")
              and int(k.split(".")[1]) <= LAYERS[-1]}
    try:
        features.load_state_dict(wanted)
    except RuntimeError as e:
        raise UserError(f"{path} is not a VGG-16 state_dict ({str(e).splitlines()[0][:200]})") from None
    return features


def gram(x: torch.Tensor) -> torch.Tensor:
    """Channel correlations of each image, normalized by the number of values."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class VGGLoss(nn.Module):
    """``forward(fake, real)`` -> (perceptual, style) for images in [-1, 1]; VGG itself is frozen."""

    def __init__(self, features: nn.Sequential, layers=LAYERS) -> None:
        super().__init__()
        self.features = features.eval().requires_grad_(False)
        self.layers = set(layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def activations(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = ((x.float() + 1) / 2 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.layers:
                out.append(x)
        return out

    def forward(self, fake: torch.Tensor, real: torch.Tensor):
        fake_acts = self.activations(fake)
        with torch.no_grad():
            real_acts = self.activations(real)
        perceptual = sum(F.l1_loss(f, r) for f, r in zip(fake_acts, real_acts))
        style = sum(F.l1_loss(gram(f), gram(r)) for f, r in zip(fake_acts, real_acts))
        return perceptual, style
