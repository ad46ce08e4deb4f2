"""Label maps as network input, shared by the label-to-photo models (pix2pixHD, SPADE).

A batch of ``--dataset_mode label`` holds class ids (``A``) and instance ids (``inst``) as
float maps of whole numbers; the networks read one-hot channels and the instance boundaries.
"""

from __future__ import annotations

import torch

from util.errors import UserError

# Colours of the first classes on pages and galleries (then repeated): the maps classes of
# datasets/make_maps_labels.py in their rendering's colours, dontcare black.
LABEL_COLOURS = ((236, 232, 222), (253, 253, 253), (181, 208, 247), (202, 222, 172), (216, 216, 216), (0, 0, 0),
                 (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180))


def one_hot(ids: torch.Tensor, channels: int) -> torch.Tensor:
    """B x 1 x H x W class ids -> B x channels x H x W one-hot; an id >= channels is an error
    (the run's ``--label_nc`` is too small for its data)."""
    ids = ids.long()
    if ids.numel() and (int(ids.max()) >= channels or int(ids.min()) < 0):
        raise UserError(f"the label maps hold class {int(ids.max())} but the input has {channels} label channels; "
                        "raise --label_nc (or add --contain_dontcare_label for a dontcare class = --label_nc)")
    out = torch.zeros(ids.shape[0], channels, *ids.shape[2:], device=ids.device)
    return out.scatter_(1, ids, 1.0)


def instance_boundaries(inst: torch.Tensor) -> torch.Tensor:
    """1 where a pixel's instance id differs from a 4-neighbour's, else 0 (pix2pixHD's edge map)."""
    edge = torch.zeros_like(inst, dtype=torch.bool)
    horizontal = inst[:, :, :, 1:] != inst[:, :, :, :-1]
    vertical = inst[:, :, 1:, :] != inst[:, :, :-1, :]
    edge[:, :, :, 1:] |= horizontal
    edge[:, :, :, :-1] |= horizontal
    edge[:, :, 1:, :] |= vertical
    edge[:, :, :-1, :] |= vertical
    return edge.float()


def colour_labels(ids: torch.Tensor) -> torch.Tensor:
    """Class ids as an RGB image in [-1, 1], for pages and galleries."""
    palette = torch.tensor(LABEL_COLOURS, dtype=torch.float32, device=ids.device) / 127.5 - 1.0
    index = ids.long().squeeze(1) % len(LABEL_COLOURS)
    return palette[index].permute(0, 3, 1, 2).contiguous()


def require_instances(batch: dict, model: str) -> None:
    if "inst" not in batch:
        raise UserError(f"--model {model} reads instance maps (<phase>_inst/) and this data has none; "
                        "add them or pass --no_instance")


def label_input(opt, batch_A: torch.Tensor, inst) -> torch.Tensor:
    """The label part of G's (and D's) input: one-hot classes (or the image) and boundaries."""
    channels = opt.label_nc + int(getattr(opt, "contain_dontcare_label", False))
    x = one_hot(batch_A, channels) if opt.label_nc > 0 else batch_A
    if not opt.no_instance:
        x = torch.cat((x, instance_boundaries(inst).to(x.dtype)), 1)
    return x
