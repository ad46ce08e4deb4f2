"""The process group of a ``torchrun`` launch, and the few collectives the engine needs.

``torchrun --nproc_per_node=N train.py ...`` (and multi-node launches) set ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; ``Distributed.from_environment`` then joins the group: NCCL
with one GPU per process (``cuda:LOCAL_RANK``) when CUDA is there, gloo on CPUs. Without
those variables it is a single process and every collective is the identity, so the
engine's code reads the same either way.

Collectives carry a timeout (``--dist_timeout``): a rank that died or hangs ends the job
with an error instead of leaving the others waiting.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Dict, List, Optional

import torch
import torch.distributed as dist

from util.errors import UserError


class Distributed:
    """Rank, world size and collectives; a single process when ``world_size`` is 1."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0,
                 device: Optional[torch.device] = None) -> None:
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.device = device  # where collectives run (the process's GPU under NCCL)

    @classmethod
    def from_environment(cls, timeout_s: float = 1800.0, use_gpus: bool = True) -> Distributed:
        """Join the group ``torchrun`` describes in the environment (a single process without
        it); ``use_gpus=False`` (``--gpu_ids -1``) keeps every process on the CPU (gloo)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if use_gpus and torch.cuda.is_available():
            if local_rank >= torch.cuda.device_count():
                raise UserError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s) on this "
                                f"node; start at most that many processes per node (--nproc_per_node)")
            device, backend = torch.device("cuda", local_rank), "nccl"
            torch.cuda.set_device(device)
        else:
            device, backend = torch.device("cpu"), "gloo"
        timeout = datetime.timedelta(seconds=timeout_s)
        store, rank, world_size = next(dist.rendezvous("env://", rank, world_size, timeout=timeout))
        # A key space per torchrun start: workers restarted after a failure (--max-restarts)
        # must not find the dead workers' addresses in a store that outlived them.
        store = dist.PrefixStore(f"pix2cycle/start_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
        dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timeout,
                                **({"device_id": device} if backend == "nccl" else {}))
        return cls(rank, world_size, local_rank, device)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def label(self) -> str:
        """Names the process in messages of ranks other than 0 (``"rank 1: "``)."""
        return f"rank {self.rank}: " if self.rank else ""

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, pages, logs and displays."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def _reduce(self, values: List[float], op) -> List[float]:
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=op)
        return tensor.tolist()

    def sum_votes(self, votes: Dict[str, float]) -> Dict[str, float]:
        """The sums over ranks of ``votes`` (the same keys on every rank), in one all-reduce:
        the training step's only collective (flags are counts of the ranks that raise them)."""
        if not self.enabled:
            return {k: float(v) for k, v in votes.items()}
        return dict(zip(votes, self._reduce([float(v) for v in votes.values()], dist.ReduceOp.SUM)))

    def mean(self, values: Dict[str, float]) -> Dict[str, float]:
        """The mean over ranks of each value (the same keys on every rank)."""
        if not self.enabled or not values:
            return dict(values)
        sums = self._reduce([float(v) for v in values.values()], dist.ReduceOp.SUM)
        return {k: s / self.world_size for k, s in zip(values, sums)}

    def gather(self, obj: Any) -> Optional[List[Any]]:
        """Every rank's ``obj`` on rank 0 (in rank order); None on the others."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """Tear the group down. After a clean run the caller passes a ``barrier`` first: gloo's
        worker threads then hold no pending work when the group goes (a rare abort at exit
        otherwise, "terminate called without an active exception")."""
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
