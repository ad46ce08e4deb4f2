"""VGG feature (perceptual) and Gram-matrix (style) losses: ``--lambda_perceptual``, ``--lambda_style``.

``--perceptual_form`` picks whose loss it is (``PERCEPTUAL_FORMS``):

- ``pix2pixhd`` (default; Wang et al. 2018, and SPADE, Park et al. 2019): VGG-19 at relu1_1,
  relu2_1, relu3_1, relu4_1 and relu5_1, weights 1/32, 1/16, 1/8, 1/4 and 1, L1 distance,
  the [-1, 1] image fed as it is (NVIDIA/pix2pixHD models/networks.py, ``Vgg19``: slices
  ending at features 2, 7, 12, 21 and 30, and ``VGGLoss.weights``; NVlabs/SPADE
  models/networks/architecture.py and loss.py are the same). Both papers weight it by 10.
- ``johnson`` (Johnson et al. 2016, Eq. 2): the feature reconstruction loss, the squared L2
  distance of VGG-16's relu3_3 activations divided by their number (C*H*W), on
  ImageNet-normalized input.
- ``vgg16_l1``: this project's earlier form, kept by name: VGG-16 at relu1_2, relu2_2,
  relu3_3, relu4_3, equal weights, L1, ImageNet-normalized input.

The style loss is the squared Frobenius norm of the difference of Gram matrices normalized
by C*H*W (Johnson et al. 2016, Eq. 3-4; Gatys et al. 2016, Eq. 3-5), summed over the form's
style layers: VGG-16's relu1_2..relu4_3 for the VGG-16 forms (Johnson, weight 1 each),
VGG-19's relu1_1..relu5_1 for ``pix2pixhd`` (Gatys' layers and weights, w_l = 1/5 times his
1/4: 1/20 each). The weights are torchvision's ImageNet VGG, read from a file:
``--vgg_weights PATH``, else torchvision's file in the torch hub cache. Nothing is downloaded:
without a file the run stops with one ``error:`` line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from util.checkpoint import safe_load
from util.errors import UserError
from util.registry import Registry

# torchvision's file names of the ImageNet weights (VGG16_Weights / VGG19_Weights.IMAGENET1K_V1).
VGG_FILES = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}
VGG16_FILE = VGG_FILES["vgg16"]
VGG_CONFIGS = {"vgg16": "D", "vgg19": "E"}  # torchvision.models.vgg.cfgs
LAYERS = (3, 8, 15, 22)  # relu1_2, relu2_2, relu3_3, relu4_3 in vgg16().features
VGG19_LAYERS = (1, 6, 11, 20, 29)  # relu1_1 .. relu5_1 in vgg19().features (pix2pixHD's slice ends 2, 7, 12, 21, 30)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _squared_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a - b||_2^2 / (C*H*W), averaged over the batch (Johnson et al. 2016, Eq. 2)."""
    return F.mse_loss(a, b)


def _squared_frobenius(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a - b||_F^2 of each image's (Gram) matrix, averaged over the batch."""
    return (a - b).pow(2).sum(dim=(1, 2)).mean()


@dataclass(frozen=True)
class PerceptualForm:
    """One author's VGG loss: which network, at which ``features`` indices, how weighted."""

    network: str
    layers: Tuple[int, ...]
    weights: Tuple[float, ...]
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    imagenet_input: bool
    style_layers: Tuple[int, ...]
    style_weights: Tuple[float, ...]

    def deepest(self) -> int:
        return max(self.layers + self.style_layers)


PERCEPTUAL_FORMS = Registry("perceptual form")
PERCEPTUAL_FORMS.add("pix2pixhd", PerceptualForm(
    "vgg19", VGG19_LAYERS, (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0), F.l1_loss, False, VGG19_LAYERS, (1 / 20,) * 5))
PERCEPTUAL_FORMS.add("johnson", PerceptualForm("vgg16", (15,), (1.0,), _squared_l2, True, LAYERS, (1.0,) * 4))
PERCEPTUAL_FORMS.add("vgg16_l1", PerceptualForm("vgg16", LAYERS, (1.0,) * 4, F.l1_loss, True, LAYERS, (1.0,) * 4))


def vgg_weights_file(path: Optional[str], network: str = "vgg16") -> Path:
    """``path``, else torchvision's ``network`` file in the torch hub cache; a UserError when neither is there."""
    if path:
        if not Path(path).is_file():
            raise UserError(f"--vgg_weights {path}: no such file")
        return Path(path)
    name = VGG_FILES[network]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / name
    if not cached.is_file():
        raise UserError(f"--lambda_perceptual/--lambda_style need {network.upper()} weights: none at {cached}; copy "
                        f"torchvision's {name} there or pass --vgg_weights PATH (nothing is downloaded)")
    return cached


def vgg_layers(network: str = "vgg16", last: int = LAYERS[-1]) -> nn.Sequential:
    """``torchvision.models.<network>().features`` up to index ``last``, without the classifier."""
    from torchvision.models.vgg import cfgs, make_layers

    return make_layers(cfgs[VGG_CONFIGS[network]])[:last + 1]


def vgg16_layers() -> nn.Sequential:
    """``torchvision.models.vgg16().features`` up to relu4_3."""
    return vgg_layers("vgg16", LAYERS[-1])


def vgg_features(path: Path, network: str = "vgg16", last: int = LAYERS[-1]) -> nn.Sequential:
    """VGG's layers up to ``last`` with the weights of ``path`` (a torchvision state_dict,
    whole or only its ``features.*`` entries up to that layer)."""
    features = vgg_layers(network, last)
    state = safe_load(path, map_location="cpu")
    wanted = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")
              and int(k.split(".")[1]) <= last}
    try:
        features.load_state_dict(wanted)
    except RuntimeError as e:
        raise UserError(f"{path} is not a {network.upper()} state_dict ({str(e).splitlines()[0][:200]})") from None
    return features


def vgg16_features(path: Path) -> nn.Sequential:
    return vgg_features(path, "vgg16", LAYERS[-1])


def gram(x: torch.Tensor) -> torch.Tensor:
    """Channel correlations of each image, normalized by the number of values (C*H*W)."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class VGGLoss(nn.Module):
    """``forward(fake, real)`` -> (perceptual, style) for images in [-1, 1]; VGG itself is frozen."""

    def __init__(self, features: nn.Sequential, form: Optional[PerceptualForm] = None) -> None:
        super().__init__()
        self.features = features.eval().requires_grad_(False)
        self.form = form if form is not None else PERCEPTUAL_FORMS.get("vgg16_l1")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def activations(self, x: torch.Tensor) -> dict:
        """The outputs of the form's layers, by ``features`` index."""
        x = x.float()
        if self.form.imagenet_input:
            x = ((x + 1) / 2 - self.mean) / self.std
        wanted = set(self.form.layers + self.form.style_layers)
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[i] = x
        return out

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        form = self.form
        fake_acts = self.activations(fake)
        with torch.no_grad():
            real_acts = self.activations(real)
        perceptual = sum(w * form.distance(fake_acts[i], real_acts[i]) for i, w in zip(form.layers, form.weights))
        style = sum(w * _squared_frobenius(gram(fake_acts[i]), gram(real_acts[i]))
                    for i, w in zip(form.style_layers, form.style_weights))
        return perceptual, style


def vgg_loss(form_name: str, weights: Optional[str]) -> VGGLoss:
    """The ``--perceptual_form`` loss with its network's weights (``--vgg_weights`` or the hub cache)."""
    form = PERCEPTUAL_FORMS.get(form_name)
    return VGGLoss(vgg_features(vgg_weights_file(weights, form.network), form.network, form.deepest()), form)


__all__: List[str] = ["PERCEPTUAL_FORMS", "PerceptualForm", "VGGLoss", "gram", "vgg_loss", "vgg_layers",
                      "vgg_features", "vgg16_layers", "vgg16_features", "vgg_weights_file", "VGG_FILES"]
