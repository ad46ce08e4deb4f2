"""The sampler's data order: fixed by (seed, epoch), and unrelated across seeds."""

import itertools

import pytest

from data.sampler import ResumableSampler


def order(seed: int, epoch: int, n: int = 50) -> list:
    sampler = ResumableSampler(n, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return [int(i) for i in sampler]


def test_orders_of_different_seeds_never_coincide():
    # With seed + epoch, seed 1's epoch 1 was seed 0's epoch 2: "three seeds" shared orders.
    orders = {(s, e): tuple(order(s, e)) for s, e in itertools.product(range(4), range(1, 6))}
    assert len(set(orders.values())) == len(orders)


def test_order_is_fixed_by_seed_and_epoch():
    assert order(3, 2) == order(3, 2)
    assert sorted(order(3, 2)) == list(range(50))
    shards = []
    for rank in range(2):
        sampler = ResumableSampler(50, shuffle=True, seed=3, rank=rank, world_size=2)
        sampler.set_epoch(2)
        shards.append([int(i) for i in sampler])
    assert sorted(shards[0] + shards[1]) == list(range(50))
    assert shards[0] == order(3, 2)[0::2]


def test_groups_stay_together_and_shard_whole():
    """group k: the groups are shuffled, their k indices follow each other; under DDP (2 ranks,
    groups of 4) each rank's share of a group still comes in a row, and the ranks together see
    every index once."""
    s = ResumableSampler(18, shuffle=True, seed=3, group=3)
    s.set_epoch(1)
    first = [int(i) for i in s]
    groups = [first[i:i + 3] for i in range(0, 18, 3)]
    assert sorted(first) == list(range(18)) and first != list(range(18))
    assert all(g[0] % 3 == 0 and g == [g[0], g[0] + 1, g[0] + 2] for g in groups)
    s.set_epoch(2)
    assert [int(i) for i in s] != first  # each epoch its own order of the groups
    ranks = [[int(i) for i in ResumableSampler(16, shuffle=True, seed=3, rank=r, world_size=2, group=4)]
             for r in range(2)]
    assert sorted(ranks[0] + ranks[1]) == list(range(16))
    assert all(a // 4 == b // 4 for rank in ranks for a, b in zip(rank[::2], rank[1::2]))
    with pytest.raises(ValueError, match="does not divide"):
        ResumableSampler(10, group=3)
