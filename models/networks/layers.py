"""Building blocks shared by generators and discriminators.

Normalization layers and weight initializations are looked up in tables; add an entry to
``NORM_LAYERS`` or ``INIT_TYPES`` to make a new choice available everywhere (and to the
parametrized tests). ``clean_state_dict`` / ``load_network_weights`` read weights saved by
the reference implementation, including the oldest published ones.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Mapping
from typing import Callable

import torch
from torch import nn
from torch.nn import init

from util.registry import Registry

NormLayer = Callable[[int], nn.Module]


def _no_norm(num_features: int) -> nn.Module:
    """``--norm none``: keep the layer index layout of the normalized networks."""
    return nn.Identity()


# Instance norm without affine/running stats is the reference's (and CycleGAN paper's) choice;
# batch norm keeps its running statistics so that eval mode is usable.
NORM_LAYERS = Registry("norm")
NORM_LAYERS.add("batch", functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True))
NORM_LAYERS.add("instance", functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False))
NORM_LAYERS.add("syncbatch", functools.partial(nn.SyncBatchNorm, affine=True, track_running_stats=True))
NORM_LAYERS.add("none", _no_norm)


def get_norm_layer(norm: str) -> NormLayer:
    """Return a factory ``num_features -> nn.Module`` for the normalization called ``norm``."""
    return NORM_LAYERS.get(norm)


def conv_bias(norm_layer: NormLayer | type) -> bool:
    """Whether a conv followed by ``norm_layer`` gets a bias, by the reference's rule.

    A bias before BatchNorm is cancelled by the mean subtraction, so the reference adds one
    only for InstanceNorm2d. It applies the same test to ``--norm none`` (which is not
    InstanceNorm), so those convs have no bias either; we keep that for weight compatibility.
    """
    factory = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return factory in (nn.InstanceNorm2d, nn.InstanceNorm3d)


# Each takes a conv/linear weight and the gain; the gain is unused by kaiming, as in the reference.
INIT_TYPES = Registry("init type")
INIT_TYPES.add("normal", lambda w, gain: init.normal_(w, 0.0, gain))
INIT_TYPES.add("xavier", lambda w, gain: init.xavier_normal_(w, gain=gain))
INIT_TYPES.add("kaiming", lambda w, gain: init.kaiming_normal_(w, a=0, mode="fan_in"))
INIT_TYPES.add("orthogonal", lambda w, gain: init.orthogonal_(w, gain=gain))

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
             nn.ConvTranspose3d, nn.Linear)


def spectral_norm_convs(net: nn.Module) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) of every convolution of ``net``, in place.

    Applied after ``init_weights``: the initial weights are the normalized ones' originals.
    Each weight becomes ``parametrizations.weight.original`` plus the power-iteration vectors,
    so the state_dict keys change only for networks built with it.
    """
    for module in list(net.modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.utils.parametrizations.spectral_norm(module)
    return net


def spectral_norm_inner_convs(net: nn.Module) -> nn.Module:
    """Spectral normalization of every convolution but the first and the last, in place: SPADE's
    discriminator (NVlabs/SPADE models/networks/discriminator.py, ``NLayerDiscriminator``: only
    the inner convs go through ``norm_layer``, ``spectralinstance`` by default; the input conv
    and the 1-channel output conv are plain)."""
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    for module in convs[1:-1]:
        nn.utils.parametrizations.spectral_norm(module)
    return net


def _no_spectral_norm(net: nn.Module) -> nn.Module:
    return net


# --spectral_norm_D: where the discriminator's convolutions are spectrally normalized.
# ``sngan``: every one (Miyato et al. 2018, whose SNGAN discriminators normalize each layer);
# ``spade``: the inner ones only (Park et al. 2019).
SPECTRAL_NORM_PLACEMENTS = Registry("spectral norm placement")
SPECTRAL_NORM_PLACEMENTS.add("none", _no_spectral_norm)
SPECTRAL_NORM_PLACEMENTS.add("sngan", spectral_norm_convs)
SPECTRAL_NORM_PLACEMENTS.add("spade", spectral_norm_inner_convs)


def spectral_norm_placement(value) -> str:
    """The placement name of ``value``; runs saved before placements had a name stored a bool
    (true: every convolution)."""
    if isinstance(value, bool) or value is None:
        return "sngan" if value else "none"
    return value


def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """Initialize conv/linear weights with ``init_type`` and zero their biases, in place.

    Affine BatchNorm weights are drawn from N(1, init_gain) with zero bias, as in the
    pix2pix paper. Returns ``net`` for chaining.
    """
    init_fn = INIT_TYPES.get(init_type)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, _WEIGHTED):
                init_fn(m.weight, init_gain)
                if m.bias is not None:
                    init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)) and m.weight is not None:
                init.normal_(m.weight, 1.0, init_gain)
                init.zeros_(m.bias)
    return net


class PerImageBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training-mode statistics are those of each image alone.

    At test time the reference keeps pix2pix's batch norm in training mode (statistics of
    the batch, not the running ones). With ``test.py --batch_size N`` an image would then be
    normalised together with its neighbours and its result depend on them; one image at a
    time, each result is what batch size 1 gives. Eval mode is untouched. Same parameters
    and state_dict as ``nn.BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.dim() != 4 or x.shape[0] == 1:
            return super().forward(x)
        return torch.cat([super(PerImageBatchNorm2d, self).forward(x[i:i + 1]) for i in range(x.shape[0])])


def per_image_batch_norm(net: nn.Module) -> nn.Module:
    """Make every ``nn.BatchNorm2d`` of ``net`` a ``PerImageBatchNorm2d`` (in place); returns ``net``."""
    for module in net.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = PerImageBatchNorm2d
    return net


# Wrappers that rename every key: nn.DataParallel / DDP and torch.compile.
_WRAPPER_PREFIXES = ("module", "_orig_mod")
_INSTANCE_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _strip_wrappers(name: str) -> str:
    """Remove leading wrapper prefixes (possibly nested, e.g. ``_orig_mod.module.``)."""
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if name == prefix:
                return ""
            if name.startswith(prefix + "."):
                name = name[len(prefix) + 1:]
                changed = True
    return name


def _is_stale_instance_norm_stat(key: str, net: nn.Module, net_keys: set[str]) -> bool:
    """True for a running stat the net lacks whose owner is an InstanceNorm layer.

    PyTorch < 0.4 saved these buffers even without ``track_running_stats``; published
    CycleGAN weights still carry them.
    """
    owner, _, attr = key.rpartition(".")
    if attr not in _INSTANCE_NORM_STATS or key in net_keys:
        return False
    try:
        module = net.get_submodule(owner)
    except AttributeError:
        return False
    return isinstance(module, nn.modules.instancenorm._InstanceNorm)


def clean_state_dict(state_dict: Mapping[str, torch.Tensor],
                     net: nn.Module | None = None) -> OrderedDict[str, torch.Tensor]:
    """Return a copy of ``state_dict`` that loads into the plain (unwrapped) ``net``.

    Strips ``module.`` / ``_orig_mod.`` prefixes. When ``net`` is given, also drops
    InstanceNorm running statistics that ``net`` does not have; without ``net`` it cannot
    tell which layers are InstanceNorm, so only prefixes are stripped.
    """
    cleaned: OrderedDict[str, torch.Tensor] = OrderedDict(
        (_strip_wrappers(k), v) for k, v in state_dict.items())
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        # Per-module versions let BatchNorm fill in num_batches_tracked for old files.
        cleaned._metadata = OrderedDict(  # type: ignore[attr-defined]
            (_strip_wrappers(k), v) for k, v in metadata.items())
    if net is not None:
        net_keys = set(net.state_dict().keys())
        for key in [k for k in cleaned if _is_stale_instance_norm_stat(k, net, net_keys)]:
            del cleaned[key]
    return cleaned


def load_network_weights(net: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Clean ``state_dict`` for ``net`` and load it strictly. Keys and shapes are checked
    before anything is copied, so weights that do not fit raise and leave ``net`` as it was
    (``load_state_dict`` alone copies the tensors that fit before it raises)."""
    cleaned = clean_state_dict(state_dict, net)
    own = net.state_dict()
    # BatchNorm fills in a num_batches_tracked that older files lack; torch allows that.
    missing = [k for k in own if k not in cleaned and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in cleaned if k not in own]
    wrong = [f"size mismatch for {k}: copying a param with shape {tuple(v.shape)} from checkpoint, the shape in "
             f"current model is {tuple(own[k].shape)}" for k, v in cleaned.items()
             if k in own and isinstance(v, torch.Tensor) and tuple(v.shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        lines = wrong + ([f"Missing key(s) in state_dict: {', '.join(missing[:5])}"] if missing else []) \
            + ([f"Unexpected key(s) in state_dict: {', '.join(unexpected[:5])}"] if unexpected else [])
        raise RuntimeError("Error(s) in loading state_dict:\n" + "\n".join(lines))
    net.load_state_dict(cleaned, strict=True)
