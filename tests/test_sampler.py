"""The sampler's data order: fixed by (seed, epoch), and unrelated across seeds."""

import itertools

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
