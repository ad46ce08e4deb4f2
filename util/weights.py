"""Weight files of one network: the reference's ``<epoch>_net_<name>.pth`` and, beside it,
the same tensors as ``<epoch>_net_<name>.safetensors``.

A ``.safetensors`` file is a JSON header and raw tensor bytes: reading one never runs code
and needs no unpickler, so it is the file to open when the weights come from someone else.
The ``.pth`` stays for the reference and the tools that read it, and is read with
``torch.load(weights_only=True)`` (``util.checkpoint.safe_load``). Loading a network takes
the ``.safetensors`` where one is there and the ``.pth`` otherwise, or where the ``.pth`` is
the newer (``weights_file``). Both are written atomically (``util.checkpoint.atomic_write``),
the ``.pth`` first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Union

import torch

from util.checkpoint import atomic_save, atomic_write, safe_load
from util.checksums import ChecksumError, verify_recorded
from util.errors import UserError

SAFETENSORS = ".safetensors"
WEIGHT_SUFFIXES = (SAFETENSORS, ".pth")  # the order a loader looks for them in


def safetensors_path(path: Union[str, Path]) -> Path:
    """``<x>.safetensors`` beside the weight file ``<x>.pth``."""
    return Path(path).with_suffix(SAFETENSORS)


def weights_file(folder: Union[str, Path], stem: str) -> Optional[Path]:
    """``<folder>/<stem>.safetensors`` if it is there, else ``<stem>.pth`` if it is, else None.

    A ``.pth`` changed after its ``.safetensors`` was written (weights of the reference's
    copied over a run's, a file edited by hand) is the one loaded: the pair is saved
    ``.pth`` first, so a newer ``.pth`` means that the ``.safetensors`` is out of date.
    """
    safe, pth = (Path(folder) / f"{stem}{suffix}" for suffix in WEIGHT_SUFFIXES)
    if safe.is_file() and not (pth.is_file() and pth.stat().st_mtime_ns > safe.stat().st_mtime_ns):
        return safe
    return pth if pth.is_file() else None


def plain_tensors(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Contiguous CPU tensors, none sharing memory with another (safetensors stores each once)."""
    out, seen = {}, set()
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"weights entry {key} is a {type(value).__name__}, not a tensor")
        tensor = value.detach().cpu().contiguous()
        ptr = (tensor.untyped_storage().data_ptr(), tensor.storage_offset()) if tensor.numel() else None
        if ptr is not None and ptr in seen:
            tensor = tensor.clone()
        seen.add(ptr)
        out[key] = tensor
    return out


def save_weights(state: Dict[str, torch.Tensor], path: Union[str, Path]) -> None:
    """Write ``state`` (a network's ``state_dict``) to ``path`` (.pth) and to the .safetensors beside it."""
    from safetensors.torch import save

    atomic_save(state, path)
    data = save(plain_tensors(state), metadata={"format": "pt"})
    atomic_write(safetensors_path(path), lambda f: f.write(data))


def load_weights(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu"):
    """The tensors of ``path``: a .safetensors file (read without code, on the CPU) or a .pth
    (``safe_load`` to ``map_location``). A downloaded file is first checked against the
    SHA-256 recorded beside it (``util.checksums``)."""
    path = Path(path)
    if path.is_file():
        try:
            verify_recorded(path, " (download it again: scripts/download_model.py checks the new file against "
                                  "the same record)")
        except ChecksumError as e:
            raise UserError(str(e)) from e
    if path.suffix != SAFETENSORS:
        return safe_load(path, map_location=map_location)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise UserError(f"weights {path} not found")
    try:
        # On the CPU: load_state_dict copies the tensors to the network's device.
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"cannot read weights {path}: it is damaged or not a safetensors file ({e})") from e
