"""The console commands of ``pip install -e .``: ``pix2cycle-train``, ``pix2cycle-test``,
``pix2cycle-translate``, ``pix2cycle-export`` and ``pix2cycle-app`` run the ``main()`` of
``train.py``, ``test.py``, ``translate.py``, ``export.py`` and ``app.py``, the same programs
with the same flags.

The scripts are found beside this package (the checkout's root, or site-packages for a
non-editable install) and loaded from that file: ``import test`` would find Python's own
``test`` package first, which a top-level ``test.py`` outside the interpreter's path cannot
shadow.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def script(name: str) -> ModuleType:
    """The module of ``<root>/<name>.py``, imported once under its own name."""
    path = ROOT / f"{name}.py"
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() == path:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or not path.is_file():
        raise SystemExit(f"error: {path} not found: pix2cycle is installed without its scripts")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as `python <name>.py` would see it: pickling, multiprocessing
    spec.loader.exec_module(module)
    return module


def train() -> int:
    return script("train").main()


def test() -> int:
    return script("test").main()


def translate() -> int:
    return script("translate").main()


def export() -> int:
    return script("export").main()


def app() -> int:
    return script("app").main()
