"""Datasets and the DataLoader that cuts them into (shuffled) mini-batches.

A ``Dataset`` is anything with ``__len__`` and ``__getitem__(i)``. The ``DataLoader`` draws the
indices of each batch (in order, or in a fresh random order every epoch), fetches the samples
and stacks them into batch Tensors with ``default_collate``.

Data parallel training (one process per rank, see ``tinygrad_lite.distributed``) splits the data
two ways: ``DistributedSampler`` gives each rank a disjoint shard of a Dataset, and
``rank_generator`` / ``seed_for_rank`` give each rank its own reproducible random stream (for
random batch windows and dropout masks). Both take ``rank`` and ``world_size`` explicitly; left
out, they come from ``tinygrad_lite.distributed`` (a plain process is rank 0 of a world of 1).
"""

from __future__ import annotations

import math

import numpy as np

from .tensor import Tensor, as_tensor, get_rng


class Dataset:
    """Base class: subclasses give ``__len__`` and ``__getitem__(index) -> sample``."""

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index):  # pragma: no cover - abstract
        raise NotImplementedError


class TensorDataset(Dataset):
    """Samples are rows of the given arrays/tensors: ``dataset[i] == (a[i], b[i], ...)``."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one array or tensor")
        self.arrays = [t.data if isinstance(t, Tensor) else np.asarray(t) for t in tensors]
        lengths = [a.shape[0] if a.ndim else None for a in self.arrays]
        if None in lengths or len(set(lengths)) != 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ValueError(f"TensorDataset: every array needs the same first dimension (the "
                             f"number of samples); got shapes {shapes}")

    def __len__(self) -> int:
        return self.arrays[0].shape[0]

    def __getitem__(self, index):
        return tuple(Tensor(a[index]) for a in self.arrays)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (what ``random_split`` returns)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]


def random_split(dataset, lengths, generator: np.random.Generator | None = None) -> list:
    """Split into non-overlapping random subsets of the given lengths (counts summing to
    len(dataset), or fractions summing to 1; leftover samples from rounding fractions go to the
    first subsets one each, as in PyTorch)."""
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(v, float) for v in lengths) and math.isclose(sum(lengths), 1.0):
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(int(v) != v or v < 0 for v in lengths) or sum(lengths) != n:
        raise ValueError(f"random_split: lengths {lengths} must be non-negative counts summing "
                         f"to the dataset size {n}, or fractions summing to 1")
    order = (generator if generator is not None else get_rng()).permutation(n)
    subsets, start = [], 0
    for length in lengths:
        subsets.append(Subset(dataset, order[start:start + int(length)]))
        start += int(length)
    return subsets


def default_collate(samples):
    """Stack a list of samples into a batch: Tensors/arrays -> one Tensor with a new first
    axis (keeping their dtype); Python numbers -> a float32 or int64 Tensor; tuples/lists -> a tuple of collated fields; dicts -> a dict."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise ValueError("default_collate: samples have different numbers of fields")
        return tuple(default_collate([s[i] for s in samples]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, (int, float, bool)):  # Python numbers: float32 / int64, like tensor()
        return Tensor(list(samples))
    arrays = [s.data if isinstance(s, Tensor) else np.asarray(s) for s in samples]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"default_collate: samples have different shapes {sorted(shapes)}; "
                         f"pass a collate_fn that pads them")
    return as_tensor(np.stack(arrays))  # a new array: wrapped, not copied again


class DataLoader:
    """Iterate over a dataset in batches: ``for x, y in DataLoader(ds, batch_size=32,
    shuffle=True): ...``. Every sample appears exactly once per epoch (the last batch is
    smaller unless ``drop_last``). Shuffling uses ``generator`` (an ``np.random.Generator``),
    or the package generator reseeded by ``manual_seed``. A ``sampler`` (any iterable of
    indices with a length, e.g. ``DistributedSampler``) gives the order instead of ``shuffle``."""

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, sampler=None,
                 drop_last: bool = False, collate_fn=None,
                 generator: np.random.Generator | None = None):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got "
                             f"{batch_size!r}")
        if len(dataset) == 0:
            raise ValueError("DataLoader: the dataset is empty")
        if sampler is not None and shuffle:  # PyTorch's rule: the sampler decides the order
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle "
                             "(the sampler decides the order; DistributedSampler shuffles itself)")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.sampler, self.drop_last = shuffle, sampler, drop_last
        self.collate_fn, self.generator = collate_fn, generator

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        if self.sampler is not None:  # e.g. this rank's shard from a DistributedSampler
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
        elif self.shuffle:
            order = (self.generator if self.generator is not None else get_rng()).permutation(n)
        else:
            order = np.arange(n)
        for b in range(len(self)):
            indices = order[b * self.batch_size:(b + 1) * self.batch_size]
            batch = None if self.collate_fn else _stacked_batch(self.dataset, indices)
            if batch is None:
                samples = [self.dataset[int(i)] for i in indices]
                batch = (self.collate_fn or default_collate)(samples)
            yield batch


def _stacked_batch(dataset, indices: np.ndarray):
    """The batch in one fancy-index per array when the data is a TensorDataset (possibly inside
    Subsets) -- the same result as collating the samples one by one, much faster; else None."""
    while isinstance(dataset, Subset):
        indices, dataset = dataset.indices[indices], dataset.dataset
    if isinstance(dataset, TensorDataset):
        return tuple(as_tensor(a[indices]) for a in dataset.arrays)  # fancy indexing copied
    return None


# -- data parallel: shards and per-rank random streams -------------------------------------------

def _check_int(value, who: str, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{who}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def resolve_rank(rank=None, world_size=None, who: str = "resolve_rank") -> tuple[int, int]:
    """``(rank, world_size)`` checked: the given values, or for those left out the running
    process's from ``tinygrad_lite.distributed`` once ``distributed.init()`` has run (imported
    only here, so the data code needs no MPI); before that a process is rank 0 of a world of 1."""
    if rank is None or world_size is None:
        from . import distributed
        if distributed.is_initialized():
            default_rank, default_world = distributed.get_rank(), distributed.get_world_size()
        else:
            default_rank, default_world = 0, 1
        rank = default_rank if rank is None else rank
        world_size = default_world if world_size is None else world_size
    world_size = _check_int(world_size, who, "num_replicas (world size)", low=1)
    rank = _check_int(rank, who, "rank")
    if rank >= world_size:
        raise ValueError(f"{who}: invalid rank {rank}, rank should be in the interval "
                         f"[0, {world_size - 1}] for a world of {world_size}")
    return rank, world_size


class DistributedSampler:
    """This rank's share of the dataset's indices, PyTorch's semantics: every epoch the indices
    0..n-1 are permuted by a generator seeded with ``seed + epoch`` (the same on every rank, so
    the shards fit together; ``set_epoch`` reshuffles), padded by repeating the first indices
    up to a multiple of ``num_replicas`` (or, with ``drop_last``, cut down to one), and rank r
    takes ``indices[r::num_replicas]``. The shards are disjoint and cover the dataset (a few
    samples twice when padded). The permutation comes from NumPy's ``default_rng``, so the
    numbers differ from PyTorch's ``randperm`` for the same seed; the rules are the same.

    ``DataLoader(ds, batch_size=B, sampler=DistributedSampler(ds))`` then iterates over this
    rank's ``len(sampler)`` samples; call ``sampler.set_epoch(epoch)`` before each epoch."""

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        who = "DistributedSampler"
        self.rank, self.num_replicas = resolve_rank(rank, num_replicas, who)
        self.seed = _check_int(seed, who, "seed")
        self.dataset, self.shuffle, self.drop_last = dataset, bool(shuffle), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        # drop_last: every rank gets floor(n / N) samples; else ceil(n / N), the last few padded
        self.num_samples = n // self.num_replicas if drop_last else -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch`` (seed + epoch) on the next iteration; every rank
        must call it with the same epoch."""
        self.epoch = _check_int(epoch, "DistributedSampler.set_epoch", "epoch")

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            indices = np.arange(n)
        if self.total_size > n:  # pad with the first indices (repeated if padding exceeds n)
            indices = np.resize(indices, self.total_size)
        indices = indices[:self.total_size]
        return iter(indices[self.rank::self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples


def seed_for_rank(seed: int, rank: int | None = None, world_size: int | None = None) -> int:
    """An integer seed of rank ``rank``'s own random stream (for ``manual_seed``, i.e. dropout).

    A world of 1 gets ``seed`` itself, so a single process runs as it did before data
    parallelism. In a larger world rank r gets the seed of NumPy's ``SeedSequence(seed)
    .spawn(...)[r]`` child -- streams that are independent of each other and depend only on
    (seed, rank). A single process reproduces rank r of an N-rank run by calling
    ``seed_for_rank(seed, r, N)`` with both given explicitly."""
    rank, world_size = resolve_rank(rank, world_size, "seed_for_rank")
    seed = _check_int(seed, "seed_for_rank", "seed")
    if world_size == 1:
        return seed
    child = np.random.SeedSequence(seed, spawn_key=(rank,))  # == SeedSequence(seed).spawn(N)[rank]
    return int(child.generate_state(1, dtype=np.uint64)[0])


def rank_generator(seed: int, rank: int | None = None,
                   world_size: int | None = None) -> np.random.Generator:
    """Rank ``rank``'s own ``np.random.Generator``: ``default_rng(seed_for_rank(seed, rank,
    world_size))``. Each rank draws its batches from it; in one process, ``[rank_generator(seed,
    r, N) for r in range(N)]`` replays every rank's draws of an N-rank run."""
    return np.random.default_rng(seed_for_rank(seed, rank, world_size))
