"""scripts/scale.py (``benchmark.py --scale``): the start-up table measures what it says, in a
fresh process, and reports growth against the number of files."""

from __future__ import annotations

import importlib.util
import json

from tests.conftest import REPO_ROOT


def load_scale():
    spec = importlib.util.spec_from_file_location("pix2cycle_scale", REPO_ROOT / "scripts" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_startup_table_lists_every_file_in_a_fresh_process(tmp_path, monkeypatch):
    scale = load_scale()
    monkeypatch.chdir(tmp_path)
    assert scale.main(["--files", "30", "--no_processes", "--no_loader", "--json", "scale.json"]) == 0
    rows = json.loads((tmp_path / "scale.json").read_text())["files"]
    (folder,) = [r for r in rows if r["layout"] == "folder"]
    assert (folder["files"], folder["listed"], folder["images"]) == (30, 30, 30)
    assert folder["batch"][:2] == [1, 3] and folder["dataset_s"] > 0 and folder["peak_rss_above_imports_mib"] >= 0


def test_growth_is_the_exponent_of_time_against_files():
    scale = load_scale()
    rows = [{"files": 1000, "layout": "folder", "t": 1.0}, {"files": 10000, "layout": "folder", "t": 100.0}]
    assert scale.growth(rows, rows[1], "t") == "2.00" and scale.growth(rows, rows[0], "t") == ""
