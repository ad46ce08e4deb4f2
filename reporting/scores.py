"""Metric results for people: console lines and gallery cells.

``evaluation/`` computes results as plain dicts (``{"mean", "std", "n"}``, ``{"value"}``
or ``{"unavailable": reason}``); this module only words them, in each metric's own
number format (``METRICS[name].fmt``).
"""

from __future__ import annotations

from typing import Dict, List, Union

from evaluation.evaluator import base_name
from evaluation.metrics import METRICS
from reporting.html import Note


def format_value(name: str, result: dict) -> str:
    """``"23.41 ± 1.20"``, ``"84.2"`` or ``"n/a"`` for the result of metric ``name``
    (a plain name or one suffixed by its target domain, ``fid_B``)."""
    fmt = METRICS[base_name(name)].fmt if base_name(name) in METRICS else ".4g"
    if "unavailable" in result:
        return "n/a"
    if "value" in result:
        return f"{result['value']:{fmt}}"
    return f"{result['mean']:{fmt}} ± {result['std']:{fmt}}"


def format_result(name: str, result: dict) -> Union[str, Note]:
    """A gallery cell: the value, or ``"n/a"`` with the reason on hover."""
    if "unavailable" in result:
        return Note("n/a", result["unavailable"])
    return format_value(name, result)


def summarize(results: Dict[str, dict]) -> str:
    """One console line: ``"psnr 23.41 ± 1.20 | ssim 0.612 ± 0.050 | fid 84.2"``."""
    return " | ".join(f"{name} {format_value(name, result)}" for name, result in results.items())


def summary_line(by_target: Dict[str, Dict[str, dict]], results: Dict[str, dict]) -> str:
    """One console line for an evaluator's results (``by_target`` per translation, ``results``
    by suffixed name), per translation when there are two."""
    if not by_target:
        return summarize(results)
    if len(by_target) == 1:
        return summarize(next(iter(by_target.values())))
    return " ;  ".join(f"{'A' if t == 'B' else 'B'}->{t}: {summarize(r)}" for t, r in by_target.items())


def describe_unavailable(unavailable: Dict[str, str]) -> List[str]:
    """One short line per distinct reason: ``"skipped fid, kid: <reason>"``."""
    by_reason: Dict[str, List[str]] = {}
    for name, reason in unavailable.items():
        by_reason.setdefault(reason, []).append(name)
    return [f"skipped {', '.join(names)}: {reason}" for reason, names in by_reason.items()]
