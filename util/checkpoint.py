"""Saving and loading checkpoints safely.

Every file is written to a temporary name beside its target, flushed to disk and renamed
over it, so a process killed mid-save leaves the previous file intact. Every file is read
with ``torch.load(weights_only=True)``: checkpoints are downloaded from the internet, and
a file that needs arbitrary code to unpickle is refused.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from util.errors import UserError


def atomic_save(obj: Any, path: Union[str, Path]) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UserError(f"cannot write checkpoint {path}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove_quietly(tmp)
        raise UserError(f"cannot write checkpoint {path} (previous one kept): {e.strerror or e}") from e
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def safe_load(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu") -> Any:
    """Load a checkpoint without running code from it; a clear ``UserError`` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise UserError(f"refusing to load {path}: it holds objects that need arbitrary code to unpickle "
                        f"(only tensors and plain containers are accepted)") from e
    except (RuntimeError, EOFError, OSError) as e:
        raise UserError(f"cannot read checkpoint {path}: it is damaged or not a PyTorch file ({e})") from e


def capture_rng_state() -> dict:
    """The states of every random generator a training run draws from."""
    np_state = np.random.get_state()
    state = {
        "python": _python_state_to_plain(random.getstate()),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.random.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    random.setstate(_python_state_from_plain(state["python"]))
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["gauss"]))
    torch.random.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_plain(state: tuple) -> list:
    version, internal, gauss_next = state
    return [version, torch.tensor(internal, dtype=torch.int64), gauss_next]


def _python_state_from_plain(plain: list) -> tuple:
    version, internal, gauss_next = plain
    return (int(version), tuple(int(v) for v in internal.tolist()), gauss_next)
