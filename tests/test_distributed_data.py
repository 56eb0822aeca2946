"""Data sharding for data parallel training, without MPI: DistributedSampler (PyTorch's
semantics), the DataLoader's sampler option, and the per-rank random streams and batch shares
of the GPT's get_batch. Ranks are simulated by passing rank / world size explicitly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_lite as tg
from tinygrad_lite.data import (DataLoader, DistributedSampler, TensorDataset, rank_generator,
                                resolve_rank, seed_for_rank)
from tinygrad_lite.text import get_batch, rank_batch_size

from error_checks import raises


class Range:
    """A dataset whose sample i is i (enough for a sampler, which only needs len)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def shards(n, replicas, **kwargs):
    return [list(DistributedSampler(Range(n), num_replicas=replicas, rank=r, **kwargs))
            for r in range(replicas)]


sizes = st.integers(1, 60)
replicas = st.integers(1, 7)


@settings(max_examples=60, deadline=None)
@given(n=sizes, num_replicas=replicas, shuffle=st.booleans(), seed=st.integers(0, 2**31))
def test_padded_shards_cover_the_dataset(n, num_replicas, shuffle, seed):
    parts = shards(n, num_replicas, shuffle=shuffle, seed=seed)
    per_rank = -(-n // num_replicas)  # ceil
    assert all(len(p) == per_rank for p in parts)
    union = [i for p in parts for i in p]
    assert set(union) == set(range(n))
    padding = per_rank * num_replicas - n
    assert len(union) == n + padding
    if padding <= n:  # only the padding repeats, each padded index once
        assert len(union) - len(set(union)) == padding
    # torch's rule: the list is the permutation plus its first indices, dealt out round robin
    dealt = [parts[i % num_replicas][i // num_replicas] for i in range(len(union))]
    order = dealt[:n]
    assert sorted(order) == list(range(n))
    assert dealt[n:] == [order[i % n] for i in range(padding)]
    if not shuffle:
        assert order == list(range(n))


@settings(max_examples=60, deadline=None)
@given(n=sizes, num_replicas=replicas, shuffle=st.booleans(), seed=st.integers(0, 2**31))
def test_drop_last_shards_are_disjoint(n, num_replicas, shuffle, seed):
    parts = shards(n, num_replicas, shuffle=shuffle, seed=seed, drop_last=True)
    assert all(len(p) == n // num_replicas for p in parts)
    union = [i for p in parts for i in p]
    assert len(union) == len(set(union)) == n - n % num_replicas
    assert set(union) <= set(range(n))


@pytest.mark.parametrize("n, drop_last", [(12, False), (12, True)])
def test_divisible_size_is_a_partition_either_way(n, drop_last):
    parts = shards(n, 4, seed=3, drop_last=drop_last)
    assert sorted(i for p in parts for i in p) == list(range(n))


def test_hand_computed_shards():
    n = 5  # not shuffled, 2 ranks: 0..4 padded with 0, then rank r takes every other one
    assert shards(n, 2, shuffle=False) == [[0, 2, 4], [1, 3, 0]]
    assert shards(n, 2, shuffle=False, drop_last=True) == [[0, 2], [1, 3]]
    assert shards(2, 5, shuffle=False) == [[0], [1], [0], [1], [0]]  # padding longer than n
    order = np.random.default_rng(7 + 2).permutation(n).tolist()  # seed + epoch
    sampler = DistributedSampler(Range(n), num_replicas=2, rank=1, seed=7)
    sampler.set_epoch(2)
    assert list(sampler) == [order[1], order[3], order[0]]


def test_set_epoch_reshuffles_and_ranks_agree():
    n, world = 40, 3
    samplers = [DistributedSampler(Range(n), num_replicas=world, rank=r, seed=11)
                for r in range(world)]
    epochs = []
    for epoch in range(3):
        for s in samplers:
            s.set_epoch(epoch)
        parts = [list(s) for s in samplers]
        assert set(i for p in parts for i in p) == set(range(n))  # same permutation on all ranks
        assert parts == [list(s) for s in samplers]  # iterating again: the same epoch, same order
        epochs.append(parts)
    assert epochs[0] != epochs[1] != epochs[2]
    # reproducible: a new sampler with the same seed and epoch gives the same shard
    again = DistributedSampler(Range(n), num_replicas=world, rank=2, seed=11)
    again.set_epoch(1)
    assert list(again) == epochs[1][2]
    other_seed = DistributedSampler(Range(n), num_replicas=world, rank=2, seed=12)
    other_seed.set_epoch(1)
    assert list(other_seed) != epochs[1][2]


@pytest.mark.parametrize("n, world, drop_last, expected", [
    (10, 3, False, 4), (10, 3, True, 3), (9, 3, False, 3), (9, 3, True, 3), (2, 3, True, 0)])
def test_len_is_num_samples(n, world, drop_last, expected):
    s = DistributedSampler(Range(n), num_replicas=world, rank=world - 1, drop_last=drop_last)
    assert len(s) == s.num_samples == expected == len(list(s))


def test_data_loader_with_sampler():
    n, world, batch = 11, 2, 3
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    ds = TensorDataset(x, np.arange(n))
    seen = []
    for rank in range(world):
        sampler = DistributedSampler(ds, num_replicas=world, rank=rank, seed=5)
        sampler.set_epoch(1)
        loader = DataLoader(ds, batch_size=batch, sampler=sampler)
        assert len(loader) == 2  # 6 samples per rank: batches of 3 and 3
        ys = []
        for xb, yb in loader:
            np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()])
            ys += yb.numpy().tolist()
        assert ys == list(sampler)  # the loader keeps the sampler's order
        seen += ys
    assert set(seen) == set(range(n)) and len(seen) == 12  # one padded sample
    drop = DataLoader(ds, batch_size=4, sampler=DistributedSampler(ds, 2, 0), drop_last=True)
    assert len(drop) == 1 and len(list(drop)) == 1
    plain = DataLoader(ds, batch_size=4, sampler=range(n - 1, -1, -1))  # any iterable of indices
    assert next(iter(plain))[1].numpy().tolist() == [10, 9, 8, 7]


def test_data_loader_sampler_excludes_shuffle():
    ds = TensorDataset(np.zeros((4, 1)))
    with raises(ValueError, "DataLoader", "sampler option is mutually exclusive with shuffle"):
        DataLoader(ds, batch_size=2, shuffle=True, sampler=DistributedSampler(ds, 2, 0))


@pytest.mark.parametrize("kwargs, words", [
    (dict(num_replicas=2, rank=2), ["DistributedSampler", "invalid rank 2", "[0, 1]"]),
    (dict(num_replicas=2, rank=-1), ["DistributedSampler", "rank", "-1"]),
    (dict(num_replicas=0, rank=0), ["DistributedSampler", "num_replicas", "0"]),
    (dict(num_replicas=2.0, rank=0), ["DistributedSampler", "num_replicas", "2.0"]),
    (dict(num_replicas=2, rank=1.0), ["DistributedSampler", "rank", "1.0"]),
    (dict(num_replicas=2, rank=True), ["DistributedSampler", "rank", "True"]),
    (dict(num_replicas=2, rank=0, seed=-1), ["DistributedSampler", "seed", "-1"]),
])
def test_sampler_bad_arguments(kwargs, words):
    with raises(ValueError, *words):
        DistributedSampler(Range(4), **kwargs)


@settings(max_examples=40, deadline=None)
@given(num_replicas=replicas, offset=st.integers(0, 5))
def test_any_rank_outside_the_world_is_refused(num_replicas, offset):
    for rank in (num_replicas + offset, -1 - offset):
        with raises(ValueError, "DistributedSampler", "rank", str(rank)):
            DistributedSampler(Range(4), num_replicas=num_replicas, rank=rank)


def test_set_epoch_bad_argument():
    with raises(ValueError, "set_epoch", "epoch", "'1'"):
        DistributedSampler(Range(4), 1, 0).set_epoch("1")


def test_defaults_are_the_running_process():
    # a plain process is rank 0 of a world of 1 (from tinygrad_lite.distributed when present)
    assert resolve_rank() == (0, 1)
    s = DistributedSampler(Range(5), seed=1)
    assert (s.rank, s.num_replicas) == (0, 1)
    assert sorted(s) == list(range(5))
    assert seed_for_rank(9) == 9 and rank_batch_size(8) == 8
    with raises(ValueError, "seed_for_rank", "invalid rank 1"):
        seed_for_rank(9, rank=1)  # rank 1 in the default world of 1


# -- per-rank random streams and the GPT's batches ------------------------------------------------

def test_seed_for_rank():
    assert seed_for_rank(42, 0, 1) == 42  # a single process keeps its seed
    seeds = [seed_for_rank(42, r, 4) for r in range(4)]
    assert len(set(seeds)) == 4 and 42 not in seeds
    assert seeds == [seed_for_rank(42, r, 4) for r in range(4)]  # reproducible
    assert seed_for_rank(42, 1, 4) == seed_for_rank(42, 1, 2)  # depends on (seed, rank) only
    assert seed_for_rank(43, 1, 4) != seeds[1]
    expected = np.random.SeedSequence(42).spawn(4)[3].generate_state(1, dtype=np.uint64)[0]
    assert seeds[3] == int(expected)
    with raises(ValueError, "seed_for_rank", "seed", "-3"):
        seed_for_rank(-3, 0, 2)


def test_dropout_streams_differ_per_rank():
    masks = []
    for rank in range(2):
        tg.manual_seed(seed_for_rank(0, rank, 2))
        masks.append(tg.nn.functional.dropout(tg.ones(64), p=0.5, training=True).numpy())
    assert not np.array_equal(masks[0], masks[1])
    tg.manual_seed(seed_for_rank(0, 1, 2))
    np.testing.assert_array_equal(
        tg.nn.functional.dropout(tg.ones(64), p=0.5, training=True).numpy(), masks[1])


@pytest.mark.parametrize("batch_size, world, expected", [
    (8, 2, [4, 4]), (7, 2, [4, 3]), (10, 4, [3, 3, 2, 2]), (3, 3, [1, 1, 1]), (5, 1, [5])])
def test_rank_batch_size_adds_up(batch_size, world, expected):
    assert [rank_batch_size(batch_size, r, world) for r in range(world)] == expected
    assert expected == [len(a) for a in np.array_split(np.arange(batch_size), world)]


def test_rank_batch_size_bad_input():
    with raises(ValueError, "rank_batch_size", "batch_size", "world size 4", "3"):
        rank_batch_size(3, 0, 4)
    with raises(ValueError, "rank_batch_size", "invalid rank 2"):
        rank_batch_size(8, 2, 2)


def rank_steps(tokens, seed, rank, world, steps, batch_size=6, context=5):
    """Rank ``rank``'s batches over ``steps`` steps, as the rank itself would draw them."""
    rng = rank_generator(seed, rank, world)
    size = rank_batch_size(batch_size, rank, world)
    return [get_batch(tokens, size, context, rng) for _ in range(steps)]


def test_ranks_draw_different_reproducible_windows():
    tokens = np.arange(1000, dtype=np.int64)
    a0, a1 = rank_steps(tokens, 3, 0, 2, 4), rank_steps(tokens, 3, 1, 2, 4)
    for (x0, y0), (x1, y1) in zip(a0, a1):
        assert x0.shape == x1.shape == (3, 5)
        np.testing.assert_array_equal(y0, x0 + 1)
        assert not np.array_equal(x0, x1)  # independent streams: different windows
    for (x, y), (x2, y2) in zip(a1, rank_steps(tokens, 3, 1, 2, 4)):  # same seed, same rank
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    # a world of 1 draws exactly what a plain default_rng(seed) does (single-process runs as before)
    x_single, _ = rank_steps(tokens, 3, 0, 1, 1)[0]
    x_plain, _ = get_batch(tokens, 6, 5, np.random.default_rng(3))
    np.testing.assert_array_equal(x_single, x_plain)


def test_one_process_replays_every_rank():
    """The reference of a data parallel run: one process holding every rank's generator and
    drawing the ranks' micro-batches in turn gets exactly each rank's sequence of batches."""
    tokens = np.arange(500, dtype=np.int64) % 97
    world, steps, batch_size = 3, 4, 7
    per_rank = [rank_steps(tokens, 8, r, world, steps, batch_size) for r in range(world)]
    rngs = [rank_generator(8, r, world) for r in range(world)]
    for step in range(steps):
        for r in range(world):
            x, y = get_batch(tokens, rank_batch_size(batch_size, r, world), 5, rngs[r])
            np.testing.assert_array_equal(x, per_rank[r][step][0])
            np.testing.assert_array_equal(y, per_rank[r][step][1])
    assert sum(len(per_rank[r][0][0]) for r in range(world)) == batch_size
