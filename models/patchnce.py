"""PatchNCE, the contrastive loss of CUT (Park et al., "Contrastive Learning for Unpaired
Image-to-Image Translation", ECCV 2020), and ``PatchSampleF``, its patch sampler and MLPs.

A query is the feature of the output at one location; its positive key is the input's
feature at the same location, the negatives are the input's features at the other sampled
locations of the same image (of the whole batch with ``all_negatives_from_minibatch``).
The loss is the cross-entropy of picking the positive among them, at temperature ``T``.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

# The similarity given to a query with itself in the negatives' matrix: exp(-10 / T) ~ 0.
SELF_SIMILARITY = -10.0


def patchnce_loss(feat_q: torch.Tensor, feat_k: torch.Tensor, batch_size: int, temperature: float = 0.07,
                  all_negatives_from_minibatch: bool = False) -> torch.Tensor:
    """Per-query losses (``N*P``) for queries and keys of shape ``(N*P, C)``, image by image.

    Keys are detached: the input's features are targets, not trained through this term.
    """
    feat_k = feat_k.detach()
    dim = feat_q.shape[1]
    l_pos = (feat_q * feat_k).sum(dim=1, keepdim=True)  # (N*P, 1)
    groups = 1 if all_negatives_from_minibatch else batch_size
    q, k = feat_q.reshape(groups, -1, dim), feat_k.reshape(groups, -1, dim)
    l_neg = torch.bmm(q, k.transpose(1, 2))  # (groups, P, P): query i against key j
    eye = torch.eye(q.shape[1], device=q.device, dtype=torch.bool)[None]
    l_neg = l_neg.masked_fill(eye, SELF_SIMILARITY).reshape(-1, q.shape[1])
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature
    # The positive is class 0.
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device),
                           reduction="none")


def l2_normalize(x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Rows of unit length (CUT's ``Normalize``: the epsilon on the norm, not inside it).

    A row of zeros (a sampled location where every channel is 0 after a ReLU, frequent with
    a small --ngf) stays 0; the clamp keeps the gradient of the square root there 0 instead of
    inf * 0 = NaN, which stopped training. Other rows are computed exactly as CUT does."""
    return x / (x.pow(2).sum(1, keepdim=True).clamp_min(1e-30).sqrt() + eps)


class PatchSampleF(nn.Module):
    """netF: samples ``num_patches`` locations per feature map (the same for every image of
    the batch) and projects each feature through a 2-layer MLP (``use_mlp``), then L2-normalizes.

    The MLPs are sized by the feature maps: build them with ``create_mlps(channels)`` from the
    generator's features on a first batch. Keys ``mlp_<i>.0`` and ``mlp_<i>.2`` as in CUT.
    """

    def __init__(self, use_mlp: bool = True, nc: int = 256) -> None:
        super().__init__()
        self.use_mlp, self.nc = use_mlp, nc

    def create_mlps(self, channels: Sequence[int]) -> None:
        for i, c in enumerate(channels):
            mlp = nn.Sequential(nn.Linear(c, self.nc), nn.ReLU(), nn.Linear(self.nc, self.nc)) if self.use_mlp \
                else nn.Identity()
            setattr(self, f"mlp_{i}", mlp)

    def forward(self, feats: Sequence[torch.Tensor], num_patches: int = 256,
                patch_ids: Optional[Sequence[torch.Tensor]] = None) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Per layer: sampled features ``(N*P, C')`` and the locations taken (reuse them for
        the keys so that query and key look at the same place)."""
        out, ids = [], []
        for i, feat in enumerate(feats):
            n, c, h, w = feat.shape
            flat = feat.permute(0, 2, 3, 1).reshape(n, h * w, c)
            if num_patches > 0:
                where = patch_ids[i] if patch_ids is not None else \
                    torch.randperm(h * w, device=feat.device)[:min(num_patches, h * w)]
                flat = flat[:, where, :]
            else:  # every location
                where = torch.arange(h * w, device=feat.device)
            sample = getattr(self, f"mlp_{i}")(flat.reshape(-1, c))
            out.append(l2_normalize(sample.float()))
            ids.append(where)
        return out, ids
