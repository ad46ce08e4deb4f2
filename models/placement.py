"""Where a model's networks live and how they run there: the device, DataParallel or DDP,
``torch.compile``, the memory format, and the weights' dtype for ``--amp`` inference.

``Placement`` is a part of ``BaseModel``; it reads what BaseModel sets up: ``opt``,
``isTrain``, ``gpu_ids``, ``device``, ``amp_dtype``, ``channels_last`` and ``networks()``.
Plugins call ``build_network`` (through ``define_generator``/``define_discriminator`` or
directly), ``to_device``, ``unwrap`` and ``plain_networks``; the rest is the doors' business.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import List, Optional

import torch
import torch.nn as nn

from models.networks.fast_layers import use_fast_layers
from util.errors import UserError

# torch.compile's CPU code is C++ built by one of these (Inductor honours $CXX first).
CXX_COMPILERS = (os.environ.get("CXX"), "g++", "clang++", "c++")


def distributed() -> bool:
    """Whether this process is one of several launched by ``torchrun`` (engine/distributed.py)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized() \
        and torch.distributed.get_world_size() > 1


def select_device(gpu_ids: Optional[List[int]]) -> torch.device:
    """``None`` picks the first GPU when there is one; ``[]`` is the CPU. Under ``torchrun``
    each process takes the GPU of its ``LOCAL_RANK`` (or the CPU without CUDA)."""
    if distributed():
        gloo = torch.distributed.get_backend() == "gloo"  # --gpu_ids -1, or no CUDA
        return torch.device("cpu") if gloo else torch.device("cuda", torch.cuda.current_device())
    if gpu_ids is None:
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if not gpu_ids:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError(f"--gpu_ids {','.join(map(str, gpu_ids))} asks for a GPU, but CUDA is not "
                        "available here; use --gpu_ids -1 for the CPU")
    if max(gpu_ids) >= torch.cuda.device_count():
        raise UserError(f"--gpu_ids {','.join(map(str, gpu_ids))}: only {torch.cuda.device_count()} GPU(s) here")
    return torch.device(f"cuda:{gpu_ids[0]}")


class SyncedNetwork(nn.parallel.DistributedDataParallel):
    """DistributedDataParallel that steps aside while its network is frozen.

    A forward pass through a network whose weights take no gradients (D in G's step, frozen
    by ``set_requires_grad``) runs on the plain module. Through DDP it would leave DDP
    waiting for gradients that never come, and DDP would then all-reduce the next step's
    gradients even inside ``no_sync`` (an accumulating step of ``--grad_accum_steps``)."""

    def forward(self, *args, **kwargs):
        if not any(p.requires_grad for p in self.module.parameters()):
            return self.module(*args, **kwargs)
        return super().forward(*args, **kwargs)


def distributed_wrapper(net: nn.Module) -> Optional[nn.parallel.DistributedDataParallel]:
    """The DistributedDataParallel module of ``net``, also under ``torch.compile``'s wrapper
    (a compiled DDP module is no DDP instance itself); None for a network without one."""
    while True:
        if isinstance(net, nn.parallel.DistributedDataParallel):
            return net
        if not hasattr(net, "_orig_mod"):
            return None
        net = net._orig_mod


def unwrap(net: nn.Module) -> nn.Module:
    """The plain module under DataParallel / DDP / torch.compile wrappers."""
    while True:
        if isinstance(net, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            net = net.module
        elif hasattr(net, "_orig_mod"):
            net = net._orig_mod
        else:
            return net


def compile_network(net: nn.Module, backend: str, device: torch.device, training: bool) -> nn.Module:
    """``torch.compile`` of ``net``; refused with a reason where Inductor has no C++ compiler."""
    inductor = backend == "inductor"
    if inductor and device.type == "cpu" and not any(shutil.which(c) for c in CXX_COMPILERS if c):
        raise UserError("--compile on the CPU needs a C++ compiler (g++ or clang++, or $CXX), "
                        "and none was found; install one (e.g. apt install g++) or drop --compile")
    # Weights are constants when testing: Inductor then folds them into the graph and keeps
    # oneDNN's packed copies (bf16 unet_256 on a CPU: 38 ms per image against 86 ms compiled
    # without it and 55 ms eager). Passed per network, the setting applies to this network's
    # compiles only, never to later ones.
    return torch.compile(net, backend=backend, options=None if training or not inductor else {"freezing": True})


class Placement:
    """Device, wrappers, compile and inference casting of a model's networks (module docstring)."""

    def build_network(self, net: nn.Module) -> nn.Module:
        """Move a freshly built network to the device (and the chosen memory format)."""
        net = net.to(self.device)
        # Same parameters and outputs, faster layer implementations (models/networks/fast_layers.py).
        use_fast_layers(net, gemm_convs=self.device.type == "cpu" and self.opt.conv_impl == "auto",
                        autocast_pads=self.amp_dtype is not None)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        if distributed() and self.device.type == "cpu" and any(isinstance(m, nn.SyncBatchNorm) for m in net.modules()):
            raise UserError("--norm syncbatch synchronises batch statistics between GPUs (NCCL) and cannot run on "
                            "CPU processes; use --norm batch (each process normalises its own batch) or instance")
        if self.isTrain and distributed() and any(p.requires_grad for p in net.parameters()):
            # One process per GPU (or CPU): gradients are averaged over the processes.
            net = SyncedNetwork(net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        elif self.gpu_ids and len(self.gpu_ids) > 1:
            net = nn.DataParallel(net, self.gpu_ids)
        if self.opt.compile:
            net = compile_network(net, self.opt.compile_backend, self.device, self.isTrain)
        return net

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(self.device, non_blocking=True)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    unwrap = staticmethod(unwrap)

    @contextlib.contextmanager
    def plain_networks(self):
        """The networks without their DistributedDataParallel wrappers (and, where DDP is
        inside ``torch.compile``'s wrapper, without that too), for work outside the training
        step (validation): DDP starts no gradient or buffer sync there."""
        wrapped = {name: net for name, net in self.networks().items() if distributed_wrapper(net) is not None}
        for name, net in wrapped.items():
            setattr(self, "net" + name, unwrap(net))
        try:
            yield
        finally:
            for name, net in wrapped.items():
                setattr(self, "net" + name, net)

    def cast_weights_for_inference(self) -> None:
        """Store conv and linear weights in the ``--amp`` dtype, for testing only.

        Autocast would convert them from fp32 at every forward pass (54 M weights for
        unet_256: more time than the bf16 convolutions themselves on a CPU); the values are
        the ones autocast computes with, so outputs are the same. Norm layers stay fp32.
        """
        for net in self.networks().values():
            for module in net.modules():
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                    module.to(self.amp_dtype)
