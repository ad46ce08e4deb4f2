"""What this machine computes natively, and which ``--amp`` precision is fastest on it.

bf16 pays only where the hardware multiplies bf16 itself: x86 CPUs with AVX512_BF16 or
AMX, Arm CPUs with the BF16 extension, NVIDIA GPUs from Ampere (compute capability 8.0)
on. Elsewhere it is emulated through fp32 plus conversions: on an AVX2-only AMD EPYC a
pix2pix training step takes 13.5x (128) to 55x (256) as long in bf16 as in fp32
(docs/benchmarks.md).

The deciding functions take the facts as arguments (flag sets, compute capability), so
both answers can be checked without the hardware; the ``*_here`` functions read the facts
of this machine.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import sys
from pathlib import Path
from typing import Iterable, Optional, Tuple

import torch

# CPU feature flags (as /proc/cpuinfo names them) that mean bf16 arithmetic in hardware:
# x86 AVX512_BF16 and AMX, the Arm BF16 extension.
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "amx_tile", "bf16"})
# Tensor cores: fp16 from Volta (7.0), bf16 from Ampere (8.0).
CUDA_FP16_CAPABILITY = (7, 0)
CUDA_BF16_CAPABILITY = (8, 0)


# ----------------------------------------------------------------------------- deciding
def cpu_has_native_bf16(flags: Iterable[str]) -> bool:
    """True when the CPU's feature ``flags`` include bf16 arithmetic (AVX512_BF16, AMX, Arm BF16)."""
    return not CPU_BF16_FLAGS.isdisjoint(f.lower() for f in flags)


def cuda_has_native_bf16(capability: Tuple[int, int], bf16_supported: bool = True) -> bool:
    """True for GPUs with bf16 tensor cores: compute capability 8.0 on, and torch agreeing."""
    return bf16_supported and tuple(capability) >= CUDA_BF16_CAPABILITY


def auto_precision(device_type: str, native_bf16: bool, capability: Optional[Tuple[int, int]] = None) -> str:
    """The ``--amp`` value ``auto`` stands for: the fastest precision that keeps quality.

    CPU: bf16 with native support, else fp32 (emulated bf16 is many times slower). CUDA:
    bf16 on Ampere and later (as fast as fp16 there, and no loss scaling), fp16 with its
    gradient scaler on Volta/Turing, fp32 before. Other devices: fp32 (not measured).
    """
    if device_type == "cpu":
        return "bf16" if native_bf16 else "none"
    if device_type == "cuda":
        if native_bf16:
            return "bf16"
        return "fp16" if capability is not None and tuple(capability) >= CUDA_FP16_CAPABILITY else "none"
    return "none"


def emulated_bf16_reason(device_type: str, cpu_capability: str = "",
                         capability: Optional[Tuple[int, int]] = None) -> str:
    """Why bf16 is emulated on this device, for the ``--amp bf16`` warning."""
    if device_type == "cuda":
        where = f"this GPU (compute capability {'.'.join(map(str, capability or ()))}) has no bf16 tensor cores"
        return (f"{where}: bf16 is emulated, expect training slower than fp32; use --amp auto (fp16 with "
                "loss scaling here) or none")
    if device_type == "cpu":
        return (f"this CPU ({cpu_capability or 'unknown capability'}) has no native bf16 (no AVX512_BF16/AMX): "
                "bf16 is emulated, expect training many times slower than fp32 (pix2pix on an AVX2 EPYC: "
                "13.5x at 128, 55x at 256); use --amp auto or none")
    return f"bf16 on {device_type} is not known to be native here; use --amp auto or none if it is slow"


# ----------------------------------------------------------------------------- this machine
@functools.cache
def cpu_flags_here() -> frozenset:
    """This CPU's feature flags: /proc/cpuinfo's (Linux), plus what torch's own probe finds
    (which also works where there is no /proc), under the same names."""
    flags = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):  # x86, Arm
                flags.update(value.split())
                break
    probes = {"avx512_bf16": "_is_avx512_bf16_supported", "amx_tile": "_is_amx_tile_supported"}
    for flag, probe in probes.items():
        with contextlib.suppress(AttributeError, RuntimeError):
            if getattr(torch.cpu, probe)():
                flags.add(flag)
    return frozenset(flags)


def cpu_model_here() -> str:
    """The CPU's model name, e.g. "AMD EPYC 9B14"; the platform's word for it elsewhere."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_capability_here() -> str:
    """torch's vector ISA for CPU kernels: "AVX2", "AVX512", ... (it does not tell bf16 apart)."""
    return torch.backends.cpu.get_cpu_capability()


def native_bf16_here(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively."""
    if device.type == "cpu":
        return cpu_has_native_bf16(cpu_flags_here())
    if device.type == "cuda":
        return cuda_has_native_bf16(torch.cuda.get_device_capability(device), torch.cuda.is_bf16_supported())
    return False


# --amp: none (fp32), auto (resolve_amp picks for the device), or a precision.
AMP_CHOICES = ("none", "auto", "bf16", "fp16")


def resolve_amp(amp: str, device: torch.device, native_bf16: Optional[bool] = None) -> str:
    """The precision ``--amp amp`` runs at on ``device``: ``auto`` resolved, others as given.

    ``native_bf16`` is this device's fact (read from the machine when None). ``--amp bf16``
    without native support warns once, on stderr, and goes on.
    """
    if amp not in ("auto", "bf16"):
        return amp
    if native_bf16 is None:
        native_bf16 = native_bf16_here(device)
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    if amp == "auto":
        return auto_precision(device.type, native_bf16, capability)
    if not native_bf16:
        warn_once(emulated_bf16_reason(device.type, cpu_capability_here(), capability))
    return amp


PRECISION_NAMES = {"none": "fp32", "bf16": "bf16 autocast", "fp16": "fp16 autocast with loss scaling"}


def describe_precision(amp: str, resolved: str) -> str:
    """One line for the run summary, e.g. "fp32 (chosen by --amp auto)"."""
    text = PRECISION_NAMES.get(resolved, resolved)
    return f"{text} (chosen by --amp auto)" if amp == "auto" else text


_WARNED: set = set()


def warn_once(message: str) -> None:
    """Print ``warning: message`` on stderr, once per process."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"warning: {message}", file=sys.stderr)


__all__ = ["cpu_has_native_bf16", "cuda_has_native_bf16", "auto_precision", "emulated_bf16_reason",
           "cpu_flags_here", "cpu_model_here", "cpu_capability_here", "native_bf16_here", "resolve_amp",
           "describe_precision", "warn_once"]
