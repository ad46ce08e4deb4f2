"""Adversarial losses shared by pix2pix and CycleGAN.

``GANLoss`` hides the target-label bookkeeping of each GAN objective; add a mode by adding
an entry to ``GAN_MODES``. ``gradient_penalty`` is the WGAN-GP term (Gulrajani et al., 2017).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from util.registry import Registry

# (prediction, target label tensor, target_is_real, for_discriminator) -> scalar loss
GanObjective = Callable[[torch.Tensor, torch.Tensor, bool, bool], torch.Tensor]


def _vanilla(pred: torch.Tensor, target: torch.Tensor, is_real: bool, for_d: bool) -> torch.Tensor:
    # Logits in, so the sigmoid is fused into a numerically stable BCE.
    return F.binary_cross_entropy_with_logits(pred, target.expand_as(pred))


def _lsgan(pred: torch.Tensor, target: torch.Tensor, is_real: bool, for_d: bool) -> torch.Tensor:
    return F.mse_loss(pred, target.expand_as(pred))


def _wgangp(pred: torch.Tensor, target: torch.Tensor, is_real: bool, for_d: bool) -> torch.Tensor:
    # The critic raises scores of real images and lowers those of fakes.
    return -pred.mean() if is_real else pred.mean()


def _hinge(pred: torch.Tensor, target: torch.Tensor, is_real: bool, for_d: bool) -> torch.Tensor:
    if for_d:
        # Only scores on the wrong side of the +-1 margin are penalized.
        return F.relu(1.0 - pred).mean() if is_real else F.relu(1.0 + pred).mean()
    return -pred.mean() if is_real else pred.mean()


GAN_MODES = Registry("gan_mode")
GAN_MODES.add("vanilla", _vanilla)
GAN_MODES.add("lsgan", _lsgan)
GAN_MODES.add("wgangp", _wgangp)
GAN_MODES.add("hinge", _hinge)


class GANLoss(nn.Module):
    """Adversarial loss of a discriminator output against "real" or "fake".

    ``loss(prediction, target_is_real, for_discriminator=True)``. The discriminator's last
    layer has no sigmoid: ``vanilla`` applies it inside the loss.
    """

    def __init__(self, gan_mode: str, target_real_label: float = 1.0,
                 target_fake_label: float = 0.0) -> None:
        super().__init__()
        self.gan_mode = gan_mode
        self.objective = GAN_MODES.get(gan_mode)
        # Buffers follow .to(device); not persistent, they are options, not learned state.
        self.register_buffer("real_label", torch.tensor(target_real_label), persistent=False)
        self.register_buffer("fake_label", torch.tensor(target_fake_label), persistent=False)

    def get_target_tensor(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        """The label broadcast to ``prediction``'s shape (a view: no new memory)."""
        label = self.real_label if target_is_real else self.fake_label
        # A no-op when the loss was moved with the model; covers AMP dtypes and a forgotten .to().
        label = label.to(device=prediction.device, dtype=prediction.dtype)
        return label.expand_as(prediction)

    def forward(self, prediction: torch.Tensor, target_is_real: bool,
                for_discriminator: bool = True) -> torch.Tensor:
        target = self.get_target_tensor(prediction, target_is_real)
        return self.objective(prediction, target, target_is_real, for_discriminator)


def _interpolate(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Random points on the lines between real and fake samples, one mix per sample."""
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device,
                       dtype=real.dtype)
    return alpha * real + (1 - alpha) * fake


# Where the gradient penalty samples x: name -> function(real, fake) -> x.
GP_POINTS = Registry("gradient penalty kind")
GP_POINTS.add("real", lambda real, fake: real)
GP_POINTS.add("fake", lambda real, fake: fake)
GP_POINTS.add("mixed", _interpolate)


def gradient_penalty(netD: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     kind: str = "mixed", constant: float = 1.0,
                     lambda_gp: float = 10.0) -> torch.Tensor:
    """WGAN-GP term ``lambda_gp * E[(||grad_x D(x)|| - constant)^2]`` as a 0-dim tensor.

    ``kind`` picks where x is sampled: ``real``, ``fake`` or ``mixed`` (random
    interpolates). The result is differentiable w.r.t. ``netD``'s parameters.
    """
    sample_points = GP_POINTS.get(kind)
    if lambda_gp <= 0.0:
        return torch.zeros((), device=real.device, dtype=real.dtype)
    # Detached so that the penalty trains D only, never the generator that made ``fake``.
    points = sample_points(real.detach(), fake.detach()).detach().requires_grad_(True)
    scores = netD(points)
    (gradients,) = torch.autograd.grad(outputs=scores, inputs=points,
                                       grad_outputs=torch.ones_like(scores),
                                       create_graph=True, retain_graph=True)
    gradients = gradients.reshape(real.shape[0], -1)
    # The tiny offset keeps the norm differentiable where the gradient is exactly zero.
    norms = (gradients + 1e-16).norm(2, dim=1)
    return ((norms - constant) ** 2).mean() * lambda_gp


def _pix2pixhd_weight(num_D: int, num_features: int) -> float:
    # pix2pixHD, models/pix2pixHD_model.py (forward): feat_weights = 4.0 / (n_layers_D + 1),
    # D_weights = 1.0 / num_D; its D has n_layers_D + 1 intermediate outputs.
    return (1.0 / num_D) * (4.0 / num_features)


def _spade_weight(num_D: int, num_features: int) -> float:
    # SPADE, models/pix2pix_model.py (compute_generator_loss): lambda_feat / num_D per term.
    return 1.0 / num_D


# --feat_weighting: the weight of each (scale, layer) L1 term, from (num_D, features per scale).
FEATURE_MATCHING_WEIGHTS = Registry("feature matching weighting")
FEATURE_MATCHING_WEIGHTS.add("pix2pixhd", _pix2pixhd_weight)
FEATURE_MATCHING_WEIGHTS.add("spade", _spade_weight)


def feature_matching(fake: list, real: list, weighting: str = "pix2pixhd") -> torch.Tensor:
    """Discriminator feature matching (Wang et al. 2018, Eq. 4): the sum over scales k and
    layers i of ``w * L1(D_k^(i)(fake), D_k^(i)(real))``, the real features as fixed targets.

    ``weighting`` picks w: ``pix2pixhd`` (1/num_D) * 4/(n_layers_D + 1), as pix2pixHD's
    models/pix2pixHD_model.py weights ``loss_G_GAN_Feat`` (with num_D 2 and n_layers_D 3:
    1/2 per term, so 4 times the mean L1 over all terms); ``spade`` 1/num_D, summed over
    the layers (SPADE's models/pix2pix_model.py). Both are then times ``--lambda_feat``
    (10 in both papers). ``fake`` / ``real`` are a ``MultiscaleDiscriminator``'s outputs
    (per scale: the features, then the prediction, which is left out).
    """
    weight_of = FEATURE_MATCHING_WEIGHTS.get(weighting)
    total = 0.0
    for fake_scale, real_scale in zip(fake, real):
        layers = list(zip(fake_scale[:-1], real_scale[:-1]))
        w = weight_of(len(fake), len(layers))
        total = total + sum(F.l1_loss(f.float(), r.detach().float()) for f, r in layers) * w
    return total
