"""Precision that fits the hardware: native bf16 detection, ``--amp auto``, the emulated-bf16 warning."""

from __future__ import annotations

import json

import pytest
import torch

import test as test_script
import train as train_script
from models import create_model
from options import parse_options
from tests.helpers import TINY_NETS_32, tiny_args
from util import hardware

AVX2_FLAGS = frozenset({"fpu", "sse4_2", "avx", "avx2", "fma", "f16c"})
AVX512_FLAGS = AVX2_FLAGS | {"avx512f", "avx512bw", "avx512_vnni"}  # AVX-512 without its bf16 extension
ONE_STEP = [*TINY_NETS_32, "--max_dataset_size", "1"]


@pytest.mark.parametrize("flags, native", [
    (AVX2_FLAGS, False),
    (AVX512_FLAGS, False),
    (AVX512_FLAGS | {"avx512_bf16"}, True),
    (AVX512_FLAGS | {"amx_tile", "amx_bf16", "amx_int8"}, True),
    ({"fp", "asimd", "sve", "bf16"}, True),  # Arm with the BF16 extension
    ({"fp", "asimd"}, False),
])
def test_cpu_native_bf16_from_flags(flags, native):
    assert hardware.cpu_has_native_bf16(flags) is native


@pytest.mark.parametrize("capability, supported, native", [
    ((9, 0), True, True), ((8, 0), True, True), ((8, 6), False, False), ((7, 5), True, False), ((6, 1), True, False),
])
def test_cuda_native_bf16_from_capability(capability, supported, native):
    assert hardware.cuda_has_native_bf16(capability, supported) is native


@pytest.mark.parametrize("device, native, capability, expected", [
    ("cpu", False, None, "none"),  # AVX2: emulated bf16 is many times slower than fp32
    ("cpu", True, None, "bf16"),
    ("cuda", True, (8, 0), "bf16"),
    ("cuda", False, (7, 5), "fp16"),  # fp16 tensor cores, with the gradient scaler
    ("cuda", False, (6, 1), "none"),
    ("mps", False, None, "none"),
])
def test_auto_precision_table(device, native, capability, expected):
    assert hardware.auto_precision(device, native, capability) == expected


def test_resolve_amp_with_given_facts(capsys, monkeypatch):
    monkeypatch.setattr(hardware, "_WARNED", set())
    cpu = torch.device("cpu")
    assert hardware.resolve_amp("auto", cpu, native_bf16=False) == "none"
    assert hardware.resolve_amp("auto", cpu, native_bf16=True) == "bf16"
    assert hardware.resolve_amp("bf16", cpu, native_bf16=True) == "bf16"
    assert hardware.resolve_amp("none", cpu, native_bf16=False) == "none"
    assert capsys.readouterr().err == ""  # nothing to warn about in any of these
    assert hardware.resolve_amp("bf16", cpu, native_bf16=False) == "bf16"  # warns, and keeps the user's choice
    assert "no native bf16" in capsys.readouterr().err


def test_this_machine_answers_consistently():
    flags = hardware.cpu_flags_here()
    assert hardware.native_bf16_here(torch.device("cpu")) == hardware.cpu_has_native_bf16(flags)
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        assert hardware.native_bf16_here(torch.device("cpu"))
    assert hardware.cpu_capability_here() == torch.backends.cpu.get_cpu_capability()


@pytest.mark.parametrize("flags, dtype", [(AVX2_FLAGS, None), (AVX512_FLAGS | {"avx512_bf16"}, torch.bfloat16)])
def test_model_with_amp_auto_follows_the_cpu(flags, dtype, aligned_dataroot, tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags_here", lambda: flags)  # the machine's fact, injected
    opt = parse_options(tiny_args("pix2pix", aligned_dataroot, tmp_path, "run", *ONE_STEP, "--amp", "auto"))
    model = create_model(opt)
    assert model.amp_dtype is dtype
    assert opt.amp == "auto" and opt.amp_resolved == ("bf16" if dtype else "none")


def warnings_of(err: str) -> list:
    return [line for line in err.splitlines() if line.startswith("warning:") and "bf16" in line]


def test_bf16_without_native_support_warns_once(aligned_dataroot, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(hardware, "_WARNED", set())
    monkeypatch.setattr(hardware, "cpu_flags_here", lambda: AVX2_FLAGS)
    argv = tiny_args("pix2pix", aligned_dataroot, tmp_path, "emulated", *ONE_STEP, "--amp", "bf16")
    assert train_script.main(argv) == 0
    out, err = capsys.readouterr()
    assert len(warnings_of(err)) == 1, err
    assert "no native bf16" in warnings_of(err)[0] and "--amp auto" in warnings_of(err)[0]
    assert "bf16 autocast" in out  # the run summary names the precision it trains at

    monkeypatch.setattr(hardware, "_WARNED", set())
    monkeypatch.setattr(hardware, "cpu_flags_here", lambda: AVX512_FLAGS | {"avx512_bf16"})
    argv = tiny_args("pix2pix", aligned_dataroot, tmp_path, "native", *ONE_STEP, "--amp", "bf16")
    assert train_script.main(argv) == 0
    assert warnings_of(capsys.readouterr().err) == []


def test_auto_is_recorded_and_test_py_resolves_it_again(aligned_dataroot, tmp_path, capsys):
    argv = tiny_args("pix2pix", aligned_dataroot, tmp_path, "auto", *ONE_STEP, "--amp", "auto")
    assert train_script.main(argv) == 0
    expected = hardware.auto_precision("cpu", hardware.native_bf16_here(torch.device("cpu")))
    saved = json.loads((tmp_path / "auto" / "train_opt.json").read_text())
    assert saved["amp"] == "auto" and saved["amp_resolved"] == expected
    assert "(chosen by --amp auto)" in capsys.readouterr().out
    test_argv = ["--dataroot", str(aligned_dataroot), "--name", "auto", "--model", "pix2pix",
                 "--checkpoints_dir", str(tmp_path), "--results_dir", str(tmp_path / "results"), "--gpu_ids", "-1",
                 "--num_threads", "0", "--num_test", "1", "--metrics", "none"]
    # The precision is the test run's own choice on its own device, never the training machine's.
    assert parse_options(test_argv, is_train=False).amp == "none"
    assert test_script.main(test_argv + ["--amp", "auto"]) == 0
    assert list((tmp_path / "results" / "auto" / "test_latest" / "images").glob("*_fake_B.png"))
