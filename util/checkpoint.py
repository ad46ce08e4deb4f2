"""Saving and loading checkpoints safely.

Every file is written to a temporary name beside its target, flushed to disk and renamed
over it, so a process killed mid-save leaves the previous file intact; the temporary files
such a process leaves behind (``.<name>.<random>.tmp``) are removed by the next run
(``remove_stale_temp_files``). A failed write (disk full, folder not writable) is a
``UserError`` naming the file, and the previous file is kept. Every file is read
with ``torch.load(weights_only=True)``: checkpoints are downloaded from the internet, and
a file that needs arbitrary code to unpickle is refused.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, List, Optional, Union

import numpy as np
import torch

from util.errors import UserError

TEMP_SUFFIX = ".tmp"
SAFE_LOADING_TORCH = (2, 6)  # the first torch whose weights_only loading cannot run code

# Test hook (tests/test_checkpoint_safety.py): when this environment variable names a file,
# atomic_save writes that file and waits just before it would replace an existing
# ``*_checkpoint.pth``, so a test can SIGKILL a real run inside the save window. Unset, it
# costs one dictionary lookup per save.
PAUSE_BEFORE_REPLACE_ENV = "PIX2CYCLE_TEST_PAUSE_BEFORE_REPLACE"


def atomic_save(obj: Any, path: Union[str, Path]) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename.

    Raises ``UserError`` naming ``path`` when the folder cannot be written or the disk is
    full; the previous file at ``path`` is then untouched and no temporary file is left.
    """
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write(path: Union[str, Path], write: Callable[[BinaryIO], None]) -> None:
    """``write(file)`` to a temporary file beside ``path``, fsync, rename; errors as ``atomic_save``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as e:
        raise UserError(f"cannot write checkpoint {path}: folder {path.parent} is not writable "
                        f"({e.strerror or e})") from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if os.environ.get(PAUSE_BEFORE_REPLACE_ENV):
            _pause_for_test(path, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        _remove_quietly(tmp)
        # torch.save reports a failed write (ENOSPC, EIO, ...) as a RuntimeError whose context
        # is the OSError; any other RuntimeError is a bug, not the user's to fix.
        cause = _os_error_in_chain(e)
        if cause is None:
            raise
        raise UserError(f"cannot write checkpoint {path} (the previous one is kept): "
                        f"{cause.strerror or cause}") from e
    except BaseException:
        _remove_quietly(tmp)
        raise


def atomic_link(src: Union[str, Path], dst: Union[str, Path]) -> None:
    """Make ``dst`` hold the bytes of ``src`` (a file written by ``atomic_save``), atomically.

    A hard link where the file system has them: no second write of hundreds of megabytes.
    ``src`` is later replaced by renaming, never written in place, so ``dst`` keeps these
    bytes. Elsewhere, a copy (to a temporary file, fsync, rename). Errors as ``atomic_save``.
    """
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link{TEMP_SUFFIX}")
    try:
        _remove_quietly(str(tmp))
        try:
            os.link(src, tmp)
        except OSError:  # no hard links here (FAT, some network shares): copy
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout, 16 << 20)
                fout.flush()
                os.fsync(fout.fileno())
        os.replace(tmp, dst)
    except OSError as e:
        _remove_quietly(str(tmp))
        raise UserError(f"cannot write checkpoint {dst} (the previous one is kept): {e.strerror or e}") from e


def _os_error_in_chain(err: Optional[BaseException]) -> Optional[OSError]:
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _pause_for_test(path: Path, tmp: str) -> None:
    if path.name.endswith("_checkpoint.pth") and path.exists():
        Path(os.environ[PAUSE_BEFORE_REPLACE_ENV]).write_text(tmp)
        time.sleep(60)  # the test kills the process long before this ends


def remove_stale_temp_files(folder: Union[str, Path]) -> List[str]:
    """Delete the temporary files that saves killed mid-way left in ``folder``; return their names."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in [*folder.glob(f".*.pth.*{TEMP_SUFFIX}"), *folder.glob(f".*.safetensors.*{TEMP_SUFFIX}")]:
        try:
            p.unlink()
            removed.append(p.name)
        except OSError:
            pass
    return removed


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
    if SAFE_LOADING_TORCH > tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]):
        raise UserError(f"torch {torch.__version__} can run code from a checkpoint even with weights_only=True "
                        f"(CVE-2025-32434); install torch 2.6 or newer (pip install -r requirements.txt)")
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


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """A block that leaves every random stream of the run as it was (the states are put back)."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


def _python_state_to_plain(state: tuple) -> list:
    version, internal, gauss_next = state
    return [version, torch.tensor(internal, dtype=torch.int64), gauss_next]


def _python_state_from_plain(plain: list) -> tuple:
    version, internal, gauss_next = plain
    return (int(version), tuple(int(v) for v in internal.tolist()), gauss_next)
