"""The import graph of the rooms (the top-level packages): no loop between or inside them, no
back-up arrow (a module importing the ``__init__`` of a package it lives in, which that
``__init__`` may itself be importing it for) and ``util/`` climbing to no other room.

Imports are read from the source with ``ast``, deferred ones inside functions included (a
loop hidden by a deferred import is still a loop); only ``if TYPE_CHECKING:`` blocks, which
never run, are left out. ``tests/test_options.py`` checks the older rule that nothing below
options/ imports it.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("pix2cycle", "models", "options", "data", "util", "evaluation", "engine", "reporting")


def _modules(root: Path, rooms) -> Dict[str, Path]:
    """Dotted module name -> file, for every module of ``rooms`` (a package is its __init__)."""
    out = {}
    for room in rooms:
        for path in sorted((root / room).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path, rooms=ROOMS) -> Dict[str, Set[str]]:
    """Module -> the modules of ``rooms`` it names in an import. ``from pkg import sub`` is an
    arrow to the submodule ``pkg.sub``; ``from pkg import name`` to ``pkg`` (its __init__)."""
    modules = _modules(root, rooms)
    graph: Dict[str, Set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: Set[str] = set()
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def loops(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected parts of more than one node (Tarjan), each sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def room_graph(graph: Dict[str, Set[str]]) -> Dict[str, Set[str]]:
    rooms: Dict[str, Set[str]] = {}
    for a, targets in graph.items():
        rooms.setdefault(a.split(".")[0], set()).update(
            b.split(".")[0] for b in targets if b.split(".")[0] != a.split(".")[0])
    return rooms


def back_up_arrows(graph: Dict[str, Set[str]]) -> List[str]:
    """``a -> pkg`` where ``a`` lives inside package ``pkg``."""
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if a.startswith(b + "."))


@functools.cache
def _checkout_graph() -> Dict[str, Set[str]]:
    return import_graph(ROOT)


def problems(root: Path, rooms=ROOMS) -> List[str]:
    graph = _checkout_graph() if (root, rooms) == (ROOT, ROOMS) else import_graph(root, rooms)
    found = [f"import loop: {' <-> '.join(part)}" for part in loops(graph)]
    found += [f"import loop between rooms: {' <-> '.join(part)}" for part in loops(room_graph(graph))]
    found += [f"back-up arrow: {arrow}" for arrow in back_up_arrows(graph)]
    found += [f"util/ climbs to another room: util -> {room}" for room in sorted(room_graph(graph).get("util", ()))]
    return found


def test_no_loop_no_back_up_arrow_and_util_climbs_nowhere():
    assert problems(ROOT) == []


def test_every_room_is_read():
    """The checker sees every room's modules and the arrows between them."""
    graph = _checkout_graph()
    assert {m.split(".")[0] for m in graph} == set(ROOMS)
    assert "evaluation.metrics.registry" in graph["evaluation.metrics.suite"]
    assert "models.registry" in graph["models.pix2pix_model"]
    assert "util" not in room_graph(graph)["util"] and room_graph(graph)["util"] == set()


@pytest.mark.parametrize("files, expected", [
    ({"a/__init__.py": "from a.x import f\n", "a/x.py": "from a import g\n"},
     ["import loop: a <-> a.x", "back-up arrow: a.x -> a"]),
    ({"a/__init__.py": "", "a/x.py": "def f():\n    from .y import g\n", "a/y.py": "from a.x import f\n"},
     ["import loop: a.x <-> a.y"]),
    ({"a/__init__.py": "", "a/x.py": "import util.h\n", "util/__init__.py": "", "util/h.py": "from a import x\n"},
     ["import loop: a.x <-> util.h", "import loop between rooms: a <-> util", "util/ climbs to another room: util -> a"]),
    ({"a/__init__.py": "", "a/x.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from a.y import Y\n",
      "a/y.py": "from a import x\n"}, []),
])
def test_the_checker_finds_loops_and_arrows(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert problems(tmp_path, rooms=sorted({n.split("/")[0] for n in files})) == expected
