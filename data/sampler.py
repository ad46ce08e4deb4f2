"""A sampler whose order depends only on (seed, epoch), so training can resume mid-epoch.

Usage in a training loop::

    sampler = loader.sampler
    sampler.set_epoch(epoch)        # every epoch, before iterating
    sampler.set_start(n_done)       # only when resuming inside an epoch
    state = sampler.state_dict()    # store in the checkpoint; load_state_dict() to restore

The indices it yields are ``SampleIndex`` ints that also carry the seed and epoch; datasets
hash them into per-sample random choices (see ``base_dataset.item_generator``). With
``rank``/``world_size`` each process takes every ``world_size``-th sample of the same
permutation, the way ``DistributedSampler`` shards (padded so that every rank gets as many).
With ``group`` k, indices ``g*k .. g*k + k-1`` stay together in the order (the groups are
shuffled, not the samples inside one): the volume dataset's patches of one pair follow each
other, so it decodes each pair once per epoch instead of once per patch.
"""

from __future__ import annotations

import hashlib
from typing import Iterator, Optional, Sized, Union

import torch
from torch.utils.data import Sampler


def derived_seed(*parts: int) -> int:
    """A 63-bit seed hashed from ``parts``, e.g. (seed, epoch).

    Unlike ``seed + epoch``, distinct tuples give unrelated streams: seed 1's epoch 1 is not
    seed 0's epoch 2, so runs with different seeds never share data orders.
    """
    digest = hashlib.blake2b("/".join(str(int(p)) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class SampleIndex(int):
    """An ``int`` dataset index that remembers the sampler's seed and epoch."""

    seed: int
    epoch: int

    def __new__(cls, value: int, seed: int, epoch: int) -> SampleIndex:
        obj = super().__new__(cls, value)
        obj.seed, obj.epoch = seed, epoch
        return obj

    def __reduce__(self):  # keep seed and epoch when sent to a DataLoader worker
        return SampleIndex, (int(self), self.seed, self.epoch)


class ResumableSampler(Sampler):
    """Deterministic (seed, epoch) order with a skippable start and plain-int state."""

    def __init__(self, data_source: Union[Sized, int], shuffle: bool = True,
                 seed: Optional[int] = None, rank: int = 0, world_size: int = 1, group: int = 1) -> None:
        self.num_samples = data_source if isinstance(data_source, int) else len(data_source)
        if group < 1 or self.num_samples % group:
            raise ValueError(f"group {group} does not divide the {self.num_samples} samples")
        self.group = group
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.shuffle, self.rank, self.world_size = shuffle, rank, world_size
        if seed is None:  # no --seed: draw a base once, so the run is still self-consistent
            seed = int(torch.randint(0, 2 ** 31 - 1, (1,)))
        self.seed = int(seed)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's order; also clears any ``set_start`` offset."""
        self.epoch = int(epoch)
        self.start = 0

    def set_start(self, index: int) -> None:
        """Skip the first ``index`` samples (of this rank) of the current epoch."""
        if index < 0:
            raise ValueError(f"start index must be >= 0, got {index}")
        self.start = int(index)

    def _order(self) -> list:
        if self.shuffle:
            generator = torch.Generator().manual_seed(derived_seed(self.seed, self.epoch))
            groups = torch.randperm(self.num_samples // self.group, generator=generator).tolist()
            order = [g * self.group + k for g in groups for k in range(self.group)]
        else:
            order = list(range(self.num_samples))
        # Every rank takes the same number of samples, as DistributedSampler does: the order is
        # padded with its own first samples, so no rank waits for a step the others never take.
        padding = -len(order) % self.world_size
        order += (order * (padding // max(len(order), 1) + 1))[:padding]
        return order[self.rank::self.world_size]

    def __iter__(self) -> Iterator[SampleIndex]:
        for i in self._order()[self.start:]:
            yield SampleIndex(i, self.seed, self.epoch)

    def __len__(self) -> int:
        shard = -(-self.num_samples // self.world_size)
        return max(0, shard - self.start)

    def state_dict(self) -> dict:
        return {"seed": self.seed, "epoch": self.epoch, "start": self.start}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.start = int(state.get("start", 0))
