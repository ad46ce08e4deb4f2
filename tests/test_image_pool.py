"""ImagePool: the reference's semantics, seeding, and checkpoint round trips."""

from __future__ import annotations

import io
import random

import torch

from models.image_pool import ImagePool


def batch(start: int, n: int = 1) -> torch.Tensor:
    """Images whose every pixel holds their id, so returned images can be identified."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(
        n, 3, 2, 2).contiguous()


def ids(images: torch.Tensor) -> list[int]:
    return [int(v) for v in images[:, 0, 0, 0]]


def test_size_zero_returns_input_unchanged() -> None:
    pool = ImagePool(0, seed=0)
    images = batch(0, 4)
    assert pool.query(images) is images
    assert len(pool) == 0


def test_fills_then_swaps_with_probability_one_half() -> None:
    pool = ImagePool(5, seed=1)
    assert ids(pool.query(batch(0, 3))) == [0, 1, 2]
    assert ids(pool.query(batch(3, 2))) == [3, 4]
    assert len(pool) == 5
    returned_old = 0
    n_queries = 2000
    for i in range(5, 5 + n_queries):
        (out,) = ids(pool.query(batch(i)))
        stored = sorted(ids(torch.cat(pool.images)))
        if out == i:
            assert i not in stored  # a fresh image returned as is is not stored
        else:
            returned_old += 1
            assert out < i and out not in stored and i in stored  # swapped in
        assert len(pool) == 5
    assert abs(returned_old / n_queries - 0.5) < 0.05


def test_batch_is_processed_per_image() -> None:
    pool = ImagePool(2, seed=0)
    out = pool.query(batch(0, 3))  # the third image arrives with the pool already full
    assert out.shape == (3, 3, 2, 2)
    assert ids(out)[:2] == [0, 1]
    assert ids(out)[2] in (0, 1, 2)


def test_stores_detached_clones() -> None:
    pool = ImagePool(2, seed=0)
    images = batch(0, 2).requires_grad_(True)
    out = pool.query(images * 1.0)
    assert not out.requires_grad
    assert all(not image.requires_grad for image in pool.images)
    with torch.no_grad():
        images.fill_(7.0)
    assert ids(torch.cat(pool.images)) == [0, 1]


def run(pool: ImagePool, start: int, n: int) -> list[int]:
    return [ids(pool.query(batch(i, 2)))[j] for i in range(start, start + 2 * n, 2)
            for j in range(2)]


def test_same_seed_same_sequence() -> None:
    assert run(ImagePool(3, seed=42), 0, 50) == run(ImagePool(3, seed=42), 0, 50)
    assert run(ImagePool(3, seed=42), 0, 50) != run(ImagePool(3, seed=43), 0, 50)


def test_global_seed_controls_unseeded_pool() -> None:
    random.seed(5)
    first = run(ImagePool(3), 0, 50)
    random.seed(5)
    assert run(ImagePool(3), 0, 50) == first


def test_state_dict_round_trip_continues_identically() -> None:
    pool = ImagePool(4, seed=3)
    run(pool, 0, 20)
    buffer = io.BytesIO()
    torch.save(pool.state_dict(), buffer)
    expected = run(pool, 100, 30)

    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # plain types only: no pickled objects
    restored = ImagePool(4, seed=999)
    restored.load_state_dict(state)
    assert len(restored) == 4
    assert run(restored, 100, 30) == expected


def test_state_dict_keeps_images_on_cpu_and_is_a_copy() -> None:
    pool = ImagePool(2, seed=0)
    pool.query(batch(0, 2))
    state = pool.state_dict()
    assert all(image.device.type == "cpu" for image in state["images"])
    restored = ImagePool(2, seed=0)
    restored.load_state_dict(state)
    state["images"][0].fill_(9.0)
    assert ids(torch.cat(restored.images)) == [0, 1]
