"""GAN objectives on known inputs, and the WGAN-GP gradient penalty."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from models.losses import GAN_MODES, GANLoss, gradient_penalty
from util.errors import UserError

ZEROS = torch.zeros(2, 1, 3, 3)
TWOS = torch.full((2, 1, 3, 3), 2.0)


@pytest.mark.parametrize("mode,prediction,is_real,for_d,expected", [
    ("lsgan", ZEROS, True, True, 1.0),
    ("lsgan", ZEROS, False, True, 0.0),
    ("lsgan", TWOS, False, True, 4.0),
    ("vanilla", ZEROS, True, True, math.log(2.0)),
    ("vanilla", TWOS, True, True, math.log1p(math.exp(-2.0))),
    ("vanilla", TWOS, False, True, 2.0 + math.log1p(math.exp(-2.0))),
    ("wgangp", TWOS, True, True, -2.0),
    ("wgangp", TWOS, False, True, 2.0),
    ("hinge", ZEROS, True, True, 1.0),
    ("hinge", ZEROS, False, True, 1.0),
    ("hinge", TWOS, True, True, 0.0),  # beyond the margin: no loss
    ("hinge", TWOS, False, True, 3.0),
    ("hinge", TWOS, True, False, -2.0),  # generator: raise the critic's score
])
def test_gan_loss_values(mode: str, prediction: torch.Tensor, is_real: bool, for_d: bool,
                         expected: float) -> None:
    loss = GANLoss(mode)(prediction, is_real, for_discriminator=for_d)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("mode", sorted(GAN_MODES))
def test_every_mode_gives_a_finite_differentiable_scalar(mode: str) -> None:
    prediction = torch.randn(4, 1, 5, 5, requires_grad=True)
    criterion = GANLoss(mode)
    for is_real in (True, False):
        for for_d in (True, False):
            loss = criterion(prediction, is_real, for_discriminator=for_d)
            assert loss.dim() == 0 and torch.isfinite(loss)
            (grad,) = torch.autograd.grad(loss, prediction)
            assert grad.abs().sum() > 0


def test_label_smoothing_targets() -> None:
    criterion = GANLoss("lsgan", target_real_label=0.9, target_fake_label=0.1)
    assert criterion(ZEROS, True).item() == pytest.approx(0.81)
    assert criterion(ZEROS, False).item() == pytest.approx(0.01)
    target = criterion.get_target_tensor(ZEROS, True)
    assert target.shape == ZEROS.shape
    assert target.data_ptr() == criterion.real_label.data_ptr()  # a view, not a new tensor


def test_gan_loss_matches_prediction_dtype() -> None:
    prediction = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    assert GANLoss("vanilla")(prediction, True).dtype == torch.float64


def test_labels_are_not_saved_in_state_dict() -> None:
    assert GANLoss("lsgan").state_dict() == {}


def test_unknown_gan_mode() -> None:
    with pytest.raises(UserError, match="available: hinge, lsgan, vanilla, wgangp"):
        GANLoss("wgan")


class LinearCritic(nn.Module):
    """D(x) = <w, x> per sample: its input gradient is w everywhere."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight).flatten(1).sum(1)


@pytest.mark.parametrize("kind", ["real", "fake", "mixed"])
def test_gradient_penalty_of_linear_critic(kind: str) -> None:
    torch.manual_seed(0)
    real, fake = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    unit = torch.randn(2, 4, 4)
    unit /= unit.norm()
    # Unit gradient norm: the penalty vanishes.
    assert gradient_penalty(LinearCritic(unit), real, fake, kind).item() == pytest.approx(0.0,
                                                                                         abs=1e-8)
    # Gradient norm 3: lambda * (3 - 1)^2 = 40.
    critic = LinearCritic(3 * unit)
    penalty = gradient_penalty(critic, real, fake, kind, constant=1.0, lambda_gp=10.0)
    assert penalty.dim() == 0
    assert penalty.item() == pytest.approx(40.0, rel=1e-5)
    # d/dw of 10 * (||w|| - 1)^2 = 20 * (||w|| - 1) * w / ||w|| = 40 * unit
    penalty.backward()
    assert torch.allclose(critic.weight.grad, 40 * unit, atol=1e-5)


def test_gradient_penalty_trains_discriminator_not_generator() -> None:
    torch.manual_seed(0)
    netD = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3))
    real = torch.randn(2, 3, 8, 8)
    fake_source = torch.randn(2, 3, 8, 8, requires_grad=True)
    fake = fake_source * 2  # as if produced by a generator
    penalty = gradient_penalty(netD, real, fake)
    assert penalty.item() > 0
    penalty.backward()
    # Input gradients do not depend on the biases, so only the weights receive a gradient.
    assert all(m.weight.grad.abs().sum() > 0 for m in netD if isinstance(m, nn.Conv2d))
    assert fake_source.grad is None


def test_gradient_penalty_disabled_and_unknown_kind() -> None:
    netD = nn.Conv2d(3, 1, 1)
    x = torch.randn(1, 3, 4, 4)
    zero = gradient_penalty(netD, x, x, lambda_gp=0.0)
    assert zero.dim() == 0 and zero.item() == 0.0
    with pytest.raises(UserError, match="mixed"):
        gradient_penalty(netD, x, x, kind="both")
