"""Datasets, random_split and the DataLoader."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite.data import (DataLoader, Dataset, Subset, TensorDataset, default_collate,
                                random_split)


def make_dataset(n=10):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    y = np.arange(n, dtype=np.int64)
    return TensorDataset(x, y)


def test_tensor_dataset_items():
    ds = make_dataset()
    assert len(ds) == 10
    x, y = ds[3]
    np.testing.assert_array_equal(x.numpy(), [6, 7])
    assert y.item() == 3 and isinstance(x, tg.Tensor)
    ds2 = TensorDataset(tg.ones(4, 3))
    assert ds2[0][0].shape == (3,)


@pytest.mark.parametrize("batch_size, drop_last", [(3, False), (3, True), (5, False), (1, False),
                                                   (16, False)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_once_per_epoch(batch_size, drop_last, shuffle):
    ds = make_dataset(10)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                        generator=np.random.default_rng(0))
    for _ in range(2):
        seen = []
        for x, y in loader:
            assert x.shape == (len(y), 2) and len(y) <= batch_size
            if drop_last:
                assert len(y) == batch_size
            np.testing.assert_array_equal(x.numpy()[:, 0], 2 * y.numpy())  # rows stay paired
            seen.extend(y.numpy().tolist())
        expected = 10 - 10 % batch_size if drop_last else 10
        assert len(seen) == expected
        assert len(loader) == (10 // batch_size if drop_last else -(-10 // batch_size))
        assert len(set(seen)) == len(seen)
        if not drop_last:
            assert sorted(seen) == list(range(10))
        if not shuffle:
            assert seen == sorted(seen)


def test_shuffle_is_seeded_and_changes_between_epochs():
    def orders(seed):
        loader = DataLoader(make_dataset(20), batch_size=20, shuffle=True,
                            generator=np.random.default_rng(seed))
        return [next(iter(loader))[1].numpy().tolist() for _ in range(2)]
    a, b = orders(1), orders(1)
    assert a == b and a[0] != a[1] and a[0] != list(range(20))
    tg.manual_seed(5)  # without a generator the package generator is used
    first = [y.numpy().tolist() for _, y in DataLoader(make_dataset(), 10, shuffle=True)]
    tg.manual_seed(5)
    assert first == [y.numpy().tolist() for _, y in DataLoader(make_dataset(), 10, shuffle=True)]


class DictDataset(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"x": np.full(3, i, np.float32), "pair": (i, float(i) / 2)}


def test_collation_of_dicts_tuples_and_numbers():
    batch = next(iter(DataLoader(DictDataset(), batch_size=4)))
    assert batch["x"].shape == (4, 3)
    ids, halves = batch["pair"]
    np.testing.assert_array_equal(ids.numpy(), [0, 1, 2, 3])
    assert ids.dtype == np.int64 and halves.dtype == np.float32
    np.testing.assert_allclose(halves.numpy(), [0, .5, 1, 1.5])
    with pytest.raises(ValueError, match=r"different shapes \[\(2,\), \(3,\)\]"):
        default_collate([np.zeros(2), np.zeros(3)])
    custom = DataLoader(DictDataset(), batch_size=2, collate_fn=lambda s: len(s))
    assert list(custom) == [2, 2, 1]


def test_subset_loading_matches_per_sample_collation():
    ds = make_dataset(12)
    sub = Subset(ds, [11, 3, 5, 7])
    fast = list(DataLoader(sub, batch_size=3))
    slow = list(DataLoader(sub, batch_size=3, collate_fn=default_collate))
    for (fx, fy), (sx, sy) in zip(fast, slow):
        np.testing.assert_array_equal(fx.numpy(), sx.numpy())
        np.testing.assert_array_equal(fy.numpy(), sy.numpy())
    np.testing.assert_array_equal(fast[0][1].numpy(), [11, 3, 5])


def test_random_split():
    ds = make_dataset(20)
    parts = random_split(ds, [14, 3, 3], generator=np.random.default_rng(42))
    assert [len(p) for p in parts] == [14, 3, 3]
    together = np.concatenate([p.indices for p in parts])
    assert sorted(together.tolist()) == list(range(20))
    again = random_split(ds, [14, 3, 3], generator=np.random.default_rng(42))
    assert all(np.array_equal(a.indices, b.indices) for a, b in zip(parts, again))
    assert [len(p) for p in random_split(make_dataset(10), [0.5, 0.25, 0.25])] == [6, 2, 2]
    with pytest.raises(ValueError, match="summing to the dataset size 20"):
        random_split(ds, [10, 5])


def test_bad_input():
    with pytest.raises(ValueError, match=r"same first dimension.*\(3, 2\), \(4,\)"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        DataLoader(make_dataset(), batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        DataLoader(TensorDataset(np.zeros((0, 2))))
