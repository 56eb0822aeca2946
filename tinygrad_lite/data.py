"""Datasets and the DataLoader that cuts them into (shuffled) mini-batches.

A ``Dataset`` is anything with ``__len__`` and ``__getitem__(i)``. The ``DataLoader`` draws the
indices of each batch (in order, or in a fresh random order every epoch), fetches the samples
and stacks them into batch Tensors with ``default_collate``.
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
    or the package generator reseeded by ``manual_seed``."""

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn=None,
                 generator: np.random.Generator | None = None):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got "
                             f"{batch_size!r}")
        if len(dataset) == 0:
            raise ValueError("DataLoader: the dataset is empty")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = shuffle, drop_last
        self.collate_fn, self.generator = collate_fn, generator

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
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
