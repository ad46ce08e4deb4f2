"""The PatchGAN sizes of the pix2pix paper's study: the receptive field of one output logit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.networks import define_D

# --netD, --n_layers_D -> the patch side of the paper (Isola et al. 2017, table 3).
PATCH_SIZES = [("pixel", 3, 1), ("n_layers", 1, 16), ("basic", 3, 70), ("n_layers", 5, 286)]


def receptive_field(net: nn.Module) -> int:
    """The side of the input patch that one output value sees, from the convolutions in order."""
    field, jump = 1, 1
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            field += (module.kernel_size[0] - 1) * module.dilation[0] * jump
            jump *= module.stride[0]
    return field


@pytest.mark.parametrize("netD, n_layers, size", PATCH_SIZES)
def test_patchgan_receptive_fields(netD, n_layers, size):
    net = define_D(3, 2, netD, n_layers, norm="none", init_type="normal", init_gain=1.0).double()
    assert receptive_field(net) == size
    # The gradient of one output logit in the middle reaches exactly a size x size patch.
    side = size + 64
    x = torch.rand(1, 3, side, side, dtype=torch.double, requires_grad=True)
    out = net(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3))).flatten()
    cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 2))).flatten()
    assert int(rows[-1] - rows[0]) + 1 == size and int(cols[-1] - cols[0]) + 1 == size
