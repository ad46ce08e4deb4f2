"""export.py: exported programs and ONNX files that match PyTorch at another size, clear failures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import export
from pix2cycle import Translator
from tests.inference_helpers import train_tiny_runs


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    return train_tiny_runs(tmp_path_factory.mktemp("runs"))


def _export(checkpoints, name, fmt, out, *extra) -> int:
    return export.main(["--name", name, "--checkpoints_dir", str(checkpoints), "--format", fmt,
                        "--out", str(out), *extra])


def _reported_difference(stdout: str) -> float:
    line = next(line for line in stdout.splitlines() if "largest difference" in line)
    return float(line.rsplit(" ", 1)[-1])


def test_exported_program_runs_at_other_sizes(checkpoints, tmp_path, capsys):
    out = tmp_path / "cyc.pt2"
    assert _export(checkpoints, "cyc", "exported_program", out) == 0
    stdout = capsys.readouterr().out
    assert "parity at 36x40 (training size 32)" in stdout and _reported_difference(stdout) <= 1e-4
    assert [line.split(" ")[0] for line in stdout.splitlines()] == ["parity", "wrote"]  # only our lines
    program = torch.export.load(out).module()
    translator = Translator.from_checkpoint(checkpoints / "cyc", device="cpu")
    x = torch.rand(1, 3, 52, 28) * 2 - 1  # yet another size, not square
    assert torch.allclose(program(x), translator.forward(x), atol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == ["cyc.pt2"]  # no temporary file left


@pytest.mark.extended  # tens of seconds: out of the default suite (under 10 minutes on 2 cores)
def test_onnx_with_per_image_batch_norm(checkpoints, tmp_path, capsys):
    for module in export.EXPORT_EXTRAS:
        pytest.importorskip(module)
    out = tmp_path / "p2p.onnx"
    assert _export(checkpoints, "p2p", "onnx", out, "--bn_stats", "image") == 0
    stdout = capsys.readouterr().out
    assert "each image's own statistics" in stdout and _reported_difference(stdout) <= 1e-4
    assert out.is_file()
    assert "[torch.onnx]" not in stdout and [line.split(" ")[0] for line in stdout.splitlines()] == [
        "note:", "parity", "wrote"]  # only our lines; torch.onnx's progress behind --verbose
    assert _export(checkpoints, "p2p", "onnx", out, "--bn_stats", "image", "--verbose") == 0
    assert "[torch.onnx]" in capsys.readouterr().out


@pytest.mark.parametrize("bn_stats,eval", [("image", False), ("running", True)])
def test_exported_batch_norm_matches_the_translator(checkpoints, bn_stats, eval):
    translator = Translator.from_checkpoint(checkpoints / "p2p", device="cpu", eval=eval)
    net = export.plain_generator(translator, bn_stats)
    x = torch.rand(1, 3, 128, 256) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(net(x), translator.forward(x), atol=1e-5)


def test_the_default_export_reproduces_translate_py(checkpoints, tmp_path, capsys):
    """Batch norm by each image's own statistics unless --bn_stats running, as translate.py without --eval."""
    out = tmp_path / "p2p.pt2"
    assert _export(checkpoints, "p2p", "exported_program", out) == 0
    assert "each image's own statistics" in capsys.readouterr().out
    x = torch.rand(1, 3, 256, 384) * 2 - 1
    default = Translator.from_checkpoint(checkpoints / "p2p", device="cpu")
    running = Translator.from_checkpoint(checkpoints / "p2p", device="cpu", eval=True)
    torch.testing.assert_close(torch.export.load(out).module()(x), default.forward(x), rtol=0, atol=1e-5)
    assert (default.forward(x) - running.forward(x)).abs().max() > 1e-2  # the two forms differ
    assert _export(checkpoints, "p2p", "exported_program", out, "--bn_stats", "running") == 0
    torch.testing.assert_close(torch.export.load(out).module()(x), running.forward(x), rtol=0, atol=1e-5)


def test_missing_extras_name_the_pip_command(checkpoints, tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else real(name, *a))
    assert _export(checkpoints, "cyc", "onnx", tmp_path / "x.onnx") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "onnxscript" in err and export.PIP_HINT in err
    assert list(tmp_path.iterdir()) == []


def test_a_difference_above_tolerance_fails_and_keeps_nothing(checkpoints, tmp_path, capsys, monkeypatch):
    def drifting(net, example, dynamic, out, verbose=False):
        out.write_bytes(b"exported")
        return lambda x: net(x) + 1e-3

    monkeypatch.setitem(export.EXPORTERS._items, "exported_program", export.Exporter(export.run_graph, drifting, ".pt2"))
    assert _export(checkpoints, "cyc", "exported_program", tmp_path / "x.pt2") == 1
    assert "differs from PyTorch by 0.001" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_missing_run_is_one_error_line(tmp_path, capsys):
    assert _export(tmp_path, "nope", "exported_program", tmp_path / "x.pt2") == 2
    assert capsys.readouterr().err.strip().startswith("error: no checkpoint folder")
