"""Finding, safely loading and (where there is internet) downloading pretrained weights.

Every weights file is looked for, in this order, in

1. the ``weights_dir`` argument (``--metrics_weights``),
2. the folder named by the environment variable ``PIX2CYCLE_METRICS_WEIGHTS``,
3. the torch hub cache, ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``,
   by default ``~/.cache/torch/hub/checkpoints``). torchvision, torch-fidelity and
   torchmetrics all download into this folder, so weights fetched by any of them are reused.

A file is always read with ``torch.load(weights_only=True)``: a pickle that would run code is
refused. Nothing is downloaded unless asked for (``download=True``, ``--download_weights``):
then the file is fetched into the hub cache, where the libraries put it themselves, with one
line saying which file, from where, to where (the libraries' own progress is not shown).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from torch import nn

ENV_VAR = "PIX2CYCLE_METRICS_WEIGHTS"


DOCS = "docs/metrics.md"  # its "Pretrained weights" section says where to put the files


class WeightsUnavailable(Exception):
    """Weights that cannot be had: the message is one short line (which file, why);
    ``detail`` has the rest (the folders searched, the download's error, what to do)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.detail = detail


@dataclass(frozen=True)
class WeightsFile:
    """A pretrained file: its name in the cache, where it is published, what it is."""

    filename: str
    url: str
    description: str


def _inception_url() -> str:
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
    return URL_INCEPTION_V3


def _torchvision_url(weights_enum: str) -> str:
    import torchvision
    return getattr(torchvision.models, weights_enum).IMAGENET1K_V1.url


# key -> (url getter, description). URLs come from the libraries so a new release is followed.
_SOURCES = {
    "inception": (_inception_url, "FID/KID network: InceptionV3 with the TensorFlow FID weights, ported by torch-fidelity"),
    "alex": (lambda: _torchvision_url("AlexNet_Weights"), "LPIPS backbone: torchvision AlexNet, ImageNet"),
    "vgg": (lambda: _torchvision_url("VGG16_Weights"), "LPIPS backbone: torchvision VGG16, ImageNet"),
}


def weights_file(key: str) -> WeightsFile:
    """The ``WeightsFile`` for ``"inception"``, ``"alex"`` or ``"vgg"``."""
    url_getter, description = _SOURCES[key]
    url = url_getter()
    return WeightsFile(filename=url.rsplit("/", 1)[-1], url=url, description=description)


def search_dirs(weights_dir: Optional[str] = None) -> List[str]:
    """Folders searched for weights, in order, without duplicates."""
    candidates = [weights_dir, os.environ.get(ENV_VAR), os.path.join(torch.hub.get_dir(), "checkpoints")]
    dirs: List[str] = []
    for d in candidates:
        if d and os.path.abspath(os.path.expanduser(d)) not in dirs:
            dirs.append(os.path.abspath(os.path.expanduser(d)))
    return dirs


def load_weights_file(path: str) -> Dict[str, torch.Tensor]:
    """Read a state_dict with ``weights_only=True``; refuse anything that is not plain tensors."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for code-running pickles, also corrupt files
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsUnavailable(f"refused to load '{path}': not a plain weights file "
                                 f"(torch.load with weights_only=True said: {first_line})") from e
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise WeightsUnavailable(f"'{path}' does not hold a state_dict of tensors")
    return state


def download_weights_file(spec: WeightsFile) -> str:
    """Fetch ``spec`` into the hub cache, announced in one line; returns the file's path.

    ``torch.hub.download_url_to_file`` writes to a temporary file and renames it, so an
    interrupted download leaves no partial file under the name that is looked for.
    """
    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    path = os.path.join(folder, spec.filename)
    print(f"downloading {spec.filename} ({spec.description}) from {spec.url} to {folder}", flush=True)
    os.makedirs(folder, exist_ok=True)
    torch.hub.download_url_to_file(spec.url, path, progress=False)
    return path


def obtain_weights(key: str, weights_dir: Optional[str] = None, download: bool = False) -> Dict[str, torch.Tensor]:
    """Find ``key``'s file in ``search_dirs(weights_dir)`` (or, with ``download``, fetch it)
    and load it safely."""
    spec = weights_file(key)
    dirs = search_dirs(weights_dir)
    for d in dirs:
        path = os.path.join(d, spec.filename)
        if os.path.isfile(path):
            return load_weights_file(path)
    if download:
        try:
            path = download_weights_file(spec)
        except Exception as e:  # no network, proxy, HTTP error, disk full...
            cause = f", download failed ({type(e).__name__}); see {DOCS}"
            how = f"download from {spec.url} failed ({type(e).__name__}: {e})"
        else:  # now in the hub cache; read it back through the one safe loader
            return load_weights_file(path)
    else:
        cause = f" (--download_weights fetches it; see {DOCS})"
        how = f"the file is published at {spec.url}"
    raise WeightsUnavailable(
        f"weights file '{spec.filename}' not found{cause}",
        f"{spec.description}; not found in: {', '.join(dirs)}; {how}. Put '{spec.filename}' in one of "
        f"those folders, or in a folder given with --metrics_weights DIR or the environment variable {ENV_VAR}.")


def build_inception(state_dict: Dict[str, torch.Tensor]) -> nn.Module:
    """torch-fidelity's InceptionV3 (2048-d pool features) with ``state_dict`` loaded.

    Its constructor insists on loading a file itself (with ``weights_only=False``), so it is
    handed an in-memory copy of the tensors already read safely, never the user's file.
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    buffer = io.BytesIO()
    torch.save(dict(state_dict), buffer)
    buffer.seek(0)
    return FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=buffer)


def build_lpips(backbone: str, state_dict: Dict[str, torch.Tensor]) -> nn.Module:
    """LPIPS (Zhang et al. 2018) from torchmetrics, with the backbone read from ``state_dict``.

    The linear calibration layers ship inside torchmetrics; only the ImageNet backbone
    (torchvision layout, ``features.N.*``) comes from the weights file.
    """
    from torchmetrics.functional.image.lpips import _LPIPS  # vendored copy of the reference lpips
    net = _LPIPS(pretrained=True, net=backbone, pnet_rand=True)  # random backbone, no download
    own = net.net.state_dict()  # keys "sliceK.N.weight" hold torchvision's "features.N.weight"
    mapped = {}
    for key in own:
        source = "features." + key.split(".", 1)[1]
        if source not in state_dict:
            raise WeightsUnavailable(f"the {backbone} weights file lacks '{source}'; is it the torchvision file?")
        mapped[key] = state_dict[source]
    net.net.load_state_dict(mapped)
    return net.eval()
