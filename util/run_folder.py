"""One live writer per folder, and no run that silently replaces another.

``RunLock(folder)`` claims a folder for one process: a lock file (``.pix2cycle.lock``)
holding the process id, the host, the boot, the process's start tick and the start time.
A second claim while that process lives is a ``UserError`` naming it; a lock whose process
is gone (``kill -9``, a crash, a reboot) is stale and taken over with a note. A lock from
another host cannot be checked from here: it is refused, and the message says which file
to delete once that run is known to be gone. train.py claims its run folder, test.py its
results folder, scripts/ablate.py its study folders.

``resolve_continue_train`` turns ``--continue_train auto`` into resume-or-start.
``check_new_run`` is train.py's rule for a folder that already holds a trained run: go on
with ``--continue_train``, use another ``--name``, or give ``--overwrite``, which moves the
old run aside (``<name>.old-<time>``) rather than deleting it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Iterable, List, Optional

from util.errors import UserError

LOCK_FILE = ".pix2cycle.lock"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_tick(pid: int) -> Optional[int]:
    """When process ``pid`` started, in clock ticks since boot (Linux); None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # field 22; the name before ")" may hold spaces


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def _this_process() -> dict:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "boot_id": _boot_id(), "start_tick": _start_tick(pid),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}


def _describe(holder: dict) -> str:
    return f"process {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"


def _stale_reason(holder: dict) -> Optional[str]:
    """Why the lock's process is certainly gone, or None when it may still run."""
    if holder.get("host") != socket.gethostname():
        return None
    if holder.get("boot_id") and holder.get("boot_id") != _boot_id():
        return "the machine has restarted since"
    pid = holder.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return "that process is gone"
    tick = holder.get("start_tick")
    if tick is not None and _start_tick(pid) not in (None, tick):
        return "that process is gone (its id now belongs to another)"
    return None


class RunLock:
    """Claims ``folder`` (created if needed) for this process until ``release``; a context manager."""

    def __init__(self, folder, what: str = "run", option: str = "--checkpoints_dir") -> None:
        self.folder, self.what, self.option = Path(folder), what, option
        self.path = self.folder / LOCK_FILE
        self.held = False
        self.me = _this_process()
        self.created: List[Path] = []  # folders made by acquire, removed by release while empty

    def acquire(self) -> RunLock:
        try:
            return self._acquire()
        except OSError as e:
            self.release()
            raise UserError(f"cannot write to {self.folder} ({e.strerror or e}); check {self.option}") from e

    def _acquire(self) -> RunLock:
        self.created = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        self.folder.mkdir(parents=True, exist_ok=True)
        mine = json.dumps(self.me, sort_keys=True)
        for attempt in range(20):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)  # atomic: fails when one is there
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(mine)
                self.held = True
                return self
            holder = self._read()
            if holder is None and attempt < 10:  # being written, or removed meanwhile: look again
                time.sleep(0.05)
                continue
            reason = "it cannot be read (left by an interrupted start)" if holder is None else _stale_reason(holder)
            if reason is None:
                where = "" if holder.get("host") == self.me["host"] else \
                    f"; it was taken on another machine, so if that {self.what} is gone, delete {self.path}"
                raise UserError(f"{self.folder} is in use by another {self.what} ({_describe(holder)}){where}: "
                                f"wait for it, or use another --name")
            tmp = self.folder / f".{LOCK_FILE}.{os.getpid()}.tmp"
            tmp.write_text(mine)
            os.replace(tmp, self.path)  # take the stale lock over
            time.sleep(0.05)  # a process that took it at the same moment has replaced it by now
            if self._read() == self.me:
                print(f"note: took over the lock of {self.folder}"
                      + (f" from {_describe(holder)}" if holder else "") + f": {reason}")
                self.held = True
                return self
        raise UserError(f"could not lock {self.folder}: other processes keep taking it")

    def _read(self) -> Optional[dict]:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def release(self) -> None:
        if self.held and self._read() == self.me:
            self.path.unlink(missing_ok=True)
        self.held = False
        for folder in self.created:  # nothing was written: leave no empty folders behind
            try:
                folder.rmdir()
            except OSError:
                break
        self.created = []

    def __enter__(self) -> RunLock:
        return self.acquire() if not self.held else self

    def __exit__(self, *exc) -> None:
        self.release()


def trained_files(folder: Path) -> List[str]:
    """The weight and checkpoint files of a trained run in ``folder`` (sorted names)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and p.suffix in (".pth", ".safetensors") and ("_net_" in p.name or p.name.endswith("_checkpoint.pth")))


def move_aside(folder: Path, keep: Iterable[str] = (LOCK_FILE,)) -> Path:
    """Move everything in ``folder`` but ``keep`` into a new sibling ``<name>.old-<time>``; returns it."""
    folder = Path(folder)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside, k = folder.with_name(f"{folder.name}.old-{stamp}"), 1
    while aside.exists():
        k += 1
        aside = folder.with_name(f"{folder.name}.old-{stamp}-{k}")
    aside.mkdir()
    keep = set(keep)
    for entry in folder.iterdir():
        if entry.name not in keep:
            os.replace(entry, aside / entry.name)
    return aside


def resolve_continue_train(folder: Path, continue_train, epoch: str = "latest") -> bool:
    """``--continue_train auto`` is ``--continue_train`` when ``folder`` holds a checkpoint of
    ``epoch`` (the full ``<epoch>_checkpoint.pth``, or its ``<epoch>_net_*`` weights alone), else
    a new run: a job started again with the same command (torchrun ``--max-restarts``, a
    requeued job) goes on where it stopped, and its first start trains from scratch."""
    if continue_train != "auto":
        return bool(continue_train)
    return any(name == f"{epoch}_checkpoint.pth" or name.startswith(f"{epoch}_net_") for name in trained_files(folder))


def check_new_run(folder: Path, continue_train, overwrite: bool, epoch: str = "latest") -> Optional[Path]:
    """train.py's rule for its run folder (hold its lock first); returns where ``--overwrite``
    moved an old run, else None. A UserError names the three ways on."""
    if continue_train and overwrite:
        raise UserError("--overwrite starts a new run and --continue_train resumes the old one: give one of them")
    files = trained_files(folder)
    if not files or resolve_continue_train(folder, continue_train, epoch):
        return None
    if overwrite:
        return move_aside(folder)
    shown = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
    raise UserError(f"{folder} already holds a trained run ({shown}): resume it with --continue_train, train "
                    f"under another --name, or give --overwrite to move it aside (to {Path(folder).name}.old-<time>) "
                    f"and start anew")
