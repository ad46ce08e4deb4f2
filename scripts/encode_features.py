"""k-means clusters of a pix2pixHD run's encoded features, per class (pix2pixHD's
encode_features.py and Sec. 3.4 of the paper).

    python scripts/encode_features.py --dataroot datasets/maps_labels --name maps_hd --model pix2pixhd

A run trained with ``--instance_feat`` (or ``--label_feat``) has a feature encoder E whose
output is constant inside each instance (each class region). This script runs E over the
``--phase`` (default ``train``) photos, takes one feature vector per region, and clusters
each class's vectors into ``--n_clusters`` centres (the run's value unless given). It writes
``<checkpoints_dir>/<name>/features_clustered.npz`` (``class_<id>``: centres x feat_num);
test.py then draws one centre of its class for every region of a label map (repeatably, by
the image's name), so label maps alone give varied, plausible textures.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from data import create_dataloader, create_dataset  # noqa: E402
from models import create_model  # noqa: E402
from models.pix2pixhd_model import CLUSTERS_FILE  # noqa: E402
from options import parse_options  # noqa: E402
from util.errors import UserError, report_user_error  # noqa: E402


def kmeans(points: np.ndarray, k: int, seed: int = 0, iterations: int = 50) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding; fewer points than ``k``: the points themselves."""
    if len(points) <= k:
        return points.copy()
    rng = np.random.default_rng(seed)
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d = np.min(((points[:, None] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        centres.append(points[rng.choice(len(points), p=d / d.sum())] if d.sum() > 0 else points[rng.integers(len(points))])
    centres = np.array(centres)
    for _ in range(iterations):
        nearest = ((points[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        moved = np.array([points[nearest == j].mean(0) if (nearest == j).any() else centres[j] for j in range(k)])
        if np.allclose(moved, centres):
            break
        centres = moved
    return centres


def region_features(model, data: dict) -> Dict[int, List[np.ndarray]]:
    """class id -> the feature vectors of its regions in one batch."""
    model.set_input(data)
    with torch.no_grad():
        features = model.netE(model.real_B, model.feature_regions())
    regions, labels = model.feature_regions(), model.real_A
    out: Dict[int, List[np.ndarray]] = {}
    for b in range(features.shape[0]):
        for region in torch.unique(regions[b]):
            mask = regions[b, 0] == region
            cls = int(labels[b, 0][mask][0])
            out.setdefault(cls, []).append(features[b][:, mask][:, 0].cpu().numpy())
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if "--phase" not in argv:
            argv += ["--phase", "train"]
        opt = parse_options(argv, is_train=False)
        if opt.model != "pix2pixhd" or not (opt.instance_feat or opt.label_feat):
            raise UserError(f"run {opt.name} has no feature encoder: it needs --model pix2pixhd trained with "
                            "--instance_feat or --label_feat")
        opt.no_flip, opt.serial_batches = True, True
        model = create_model(opt)
        model.setup(opt)
        model.eval()
        by_class: Dict[int, List[np.ndarray]] = {}
        for data in create_dataloader(opt, create_dataset(opt), shuffle=False):
            if "B" not in data:
                raise UserError(f"the {opt.phase} set has no photos to encode (<phase>_img/)")
            for cls, vectors in region_features(model, data).items():
                by_class.setdefault(cls, []).extend(vectors)
        centres = {f"class_{cls}": kmeans(np.stack(v), opt.n_clusters, seed=cls) for cls, v in sorted(by_class.items())}
        path = Path(opt.checkpoints_dir) / opt.name / CLUSTERS_FILE
        np.savez(path, **centres)
        print(f"wrote {path}: " + ", ".join(f"class {k[6:]}: {len(c)} centres" for k, c in centres.items()))
        return 0
    except UserError as e:
        return report_user_error(e, "--verbose" in argv)


if __name__ == "__main__":
    sys.exit(main())
