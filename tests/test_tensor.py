"""The Tensor itself: construction and dtype rules, factories, attributes, repr, indexing and
in-place updates (their autograd safety is in test_autograd.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tg
from tinygrad_lite import Tensor
from tinygrad_lite.testing import float_arrays, shapes

# --------------------------------------------------------------------------------------------
# construction and dtype rules
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.int32,
                                   np.int64, np.uint8, np.bool_])
def test_numpy_array_keeps_its_dtype(dtype):
    a = np.zeros((2, 3), dtype=dtype)
    assert Tensor(a).dtype == dtype
    assert tg.tensor(a).dtype == dtype


@pytest.mark.parametrize("value, dtype", [
    (1.5, np.float32), ([1.0, 2.0], np.float32), ([[1, 2.5]], np.float32),
    (3, np.int64), ([1, 2, 3], np.int64), (True, np.bool_), ([True, False], np.bool_),
    (np.float64(1.0), np.float64), (np.int32(4), np.int32),
])
def test_python_values_follow_pytorch_dtype_rules(value, dtype):
    t = tg.tensor(value)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(value))


def test_explicit_dtype_wins():
    assert tg.tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert Tensor(1.5, dtype=np.float16).dtype == np.float16
    assert tg.tensor([1.7], dtype=np.int64).tolist() == [1]


def test_tensor_and_Tensor_copy_but_from_numpy_shares():
    a = np.ones(3)
    t, c = tg.tensor(a), Tensor(a)
    a[0] = 5.0
    assert t.numpy()[0] == 1.0 and c.numpy()[0] == 1.0  # both copy, as torch.tensor does
    assert not np.shares_memory(Tensor(a, dtype=np.float64).numpy(), a)
    assert not np.shares_memory(Tensor(a[1:]).numpy(), a)  # a view of the array is copied too
    w = tg.from_numpy(a)
    assert np.shares_memory(w.numpy(), a)  # from_numpy shares, as torch.from_numpy
    assert np.shares_memory(tg.as_tensor(a).numpy(), a)
    assert tg.tensor(w).numpy() is not w.numpy()


def test_tensor_of_a_tensor():
    x = tg.tensor([1.0, 2.0])
    y = Tensor(x)
    assert y.dtype == np.float32 and y.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("op", [lambda x: x + 2.0, lambda x: 2.0 + x, lambda x: x - 1,
                                lambda x: 1 - x, lambda x: x * 3, lambda x: 3.5 * x,
                                lambda x: x / 4, lambda x: 4 / x, lambda x: x ** 2,
                                lambda x: x ** 0.5, lambda x: 2 ** x, lambda x: -x,
                                lambda x: x.maximum(0.5), lambda x: x.minimum(1),
                                lambda x: tg.where(x > 1, x, 0.0), lambda x: x.clip(0.0, 1.0),
                                lambda x: x.masked_fill(x > 1, 0.0)])
def test_python_scalars_do_not_upcast_float32(op):
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    out = op(x)
    assert out.dtype == np.float32
    if out.requires_grad:
        out.sum().backward()
        assert x.grad.dtype == np.float32


@pytest.mark.parametrize("op", [lambda x: x + 1, lambda x: x * 2, lambda x: 3 - x,
                                lambda x: x - 1, lambda x: 2 * x])
def test_python_ints_keep_integer_tensors_integer(op):
    assert op(tg.arange(3)).dtype == np.int64


def test_integer_division_gives_float32():
    assert (tg.arange(1, 4) / 2).dtype == np.float32
    assert (tg.arange(1, 4) / tg.arange(1, 4)).dtype == np.float32


@pytest.mark.parametrize("op", [lambda x: x + 2.5, lambda x: 2.5 + x, lambda x: x * 0.5,
                                lambda x: x - 0.5, lambda x: 0.5 * x])
def test_integer_tensor_with_python_float_gives_float32(op):
    """As in PyTorch: int64 tensor and a Python float -> the default float dtype, float32
    (not NumPy's float64)."""
    out = op(tg.arange(3))
    assert out.dtype == np.float32


def test_statistics_of_integer_tensors_are_float32():
    i = tg.arange(5)
    for out, expected in [(i.mean(), 2.0), (i.var(), 2.5), (i.std(), np.sqrt(2.5)),
                          (i.var(correction=0), 2.0)]:
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.item(), expected, rtol=1e-6)
    assert i.sum().dtype == np.int64 and i.max().dtype == np.int64


@pytest.mark.parametrize("name, ref", [("exp", np.exp), ("log", np.log), ("sqrt", np.sqrt),
                                       ("sin", np.sin), ("cos", np.cos), ("tanh", np.tanh),
                                       ("sigmoid", lambda a: 1 / (1 + np.exp(-a)))])
def test_math_of_integer_tensors_is_float32_and_not_truncated(name, ref):
    i = tg.arange(1, 4)
    out = getattr(i, name)()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), ref(np.arange(1.0, 4.0)), rtol=1e-6)
    with np.errstate(divide="ignore"):  # log(False) = -inf
        assert getattr(tg.tensor([True, False]), name)().dtype == np.float32


def test_gelu_of_integer_tensor():
    for approximate in ("none", "tanh"):
        out = tg.arange(-1, 2).gelu(approximate)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.numpy(), [-0.1587, 0.0, 0.8413], atol=1e-3)


def test_float64_tensor_stays_float64_with_python_scalars():
    x = Tensor(np.ones(2))
    assert (x * 2.0 + 1).dtype == np.float64


def test_mixed_float_dtypes_promote():
    a = Tensor(np.ones(2, dtype=np.float32))
    b = Tensor(np.ones(2, dtype=np.float64))
    assert (a + b).dtype == np.float64


def test_bool_and_int_tensors_exist_but_cannot_require_grad():
    m = tg.tensor([True, False])
    i = tg.arange(3)
    assert m.dtype == np.bool_ and not m.requires_grad
    assert i.dtype == np.int64
    for t in (m, i):
        with pytest.raises(RuntimeError, match="floating point dtype"):
            t.requires_grad_()
    with pytest.raises(RuntimeError, match="floating point dtype"):
        tg.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point dtype"):
        tg.zeros(2, dtype=np.int64, requires_grad=True)


def test_float_tensor_requires_grad():
    x = tg.tensor([1.0], requires_grad=True)
    assert x.requires_grad and x.is_leaf and x.grad is None


# --------------------------------------------------------------------------------------------
# factories
# --------------------------------------------------------------------------------------------

def test_zeros_ones_full():
    z = tg.zeros(2, 3)
    assert z.shape == (2, 3) and z.dtype == np.float32 and not z.numpy().any()
    assert tg.zeros((2, 3)).shape == (2, 3)
    assert tg.zeros([4]).shape == (4,)
    assert tg.zeros().shape == ()
    o = tg.ones(3, dtype=np.float64, requires_grad=True)
    assert o.dtype == np.float64 and o.requires_grad and (o.numpy() == 1).all()
    f = tg.full((2, 2), 7.5)
    assert f.dtype == np.float32 and (f.numpy() == 7.5).all()
    assert tg.full(3, 1).shape == (3,)


def test_zeros_like_ones_like():
    x = Tensor(np.ones((2, 3), dtype=np.float64))
    z = tg.zeros_like(x)
    assert z.shape == (2, 3) and z.dtype == np.float64 and not z.numpy().any()
    o = tg.ones_like(x, dtype=np.float32, requires_grad=True)
    assert o.dtype == np.float32 and o.requires_grad and (o.numpy() == 1).all()
    assert tg.zeros_like(tg.arange(3)).dtype == np.int64


@pytest.mark.parametrize("args, expected, dtype", [
    ((5,), np.arange(5), np.int64), ((2, 7, 2), np.arange(2, 7, 2), np.int64),
    ((0.0, 1.0, 0.25), np.arange(0.0, 1.0, 0.25), np.float32), ((3.0,), np.arange(3.0),
                                                                  np.float32),
])
def test_arange(args, expected, dtype):
    t = tg.arange(*args)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), expected)


def test_eye():
    np.testing.assert_array_equal(tg.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(tg.eye(2, 4).numpy(), np.eye(2, 4))
    assert tg.eye(2).dtype == np.float32


def test_randn_rand_and_manual_seed():
    tg.manual_seed(123)
    a = tg.randn(1000)
    tg.manual_seed(123)
    b = tg.randn(1000)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.dtype == np.float32 and a.shape == (1000,)
    assert abs(a.numpy().mean()) < 0.2 and abs(a.numpy().std() - 1) < 0.1
    c = tg.randn(1000)
    assert not np.array_equal(a.numpy(), c.numpy())  # the generator moves on
    tg.manual_seed(124)
    assert not np.array_equal(tg.randn(1000).numpy(), a.numpy())
    r = tg.rand(2, 500, dtype=np.float64, requires_grad=True)
    assert r.shape == (2, 500) and r.dtype == np.float64 and r.requires_grad
    assert r.numpy().min() >= 0 and r.numpy().max() < 1
    tg.manual_seed(5)
    r1 = tg.rand(3).numpy()
    tg.manual_seed(5)
    np.testing.assert_array_equal(tg.rand(3).numpy(), r1)


# --------------------------------------------------------------------------------------------
# attributes and conversions
# --------------------------------------------------------------------------------------------

@given(shape=shapes())
def test_shape_attributes(shape):
    x = tg.zeros(shape)
    assert x.shape == shape and x.size() == shape and x.ndim == len(shape)
    assert x.numel() == int(np.prod(shape))
    for d in range(len(shape)):
        assert x.size(d) == shape[d]
    assert x.dtype == np.float32
    assert isinstance(x.numpy(), np.ndarray) and x.numpy().shape == shape


def test_numpy_shares_memory_and_item():
    x = Tensor(np.array([[2.5]]))
    assert x.numpy() is x.data
    assert x.item() == 2.5 and isinstance(x.item(), float)
    assert tg.tensor(3).item() == 3 and isinstance(tg.tensor(3).item(), int)
    assert float(tg.tensor([1.5])) == 1.5 and int(tg.tensor(4.0)) == 4
    assert tg.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert bool(tg.tensor(1.0)) and not bool(tg.tensor([0.0]))


def test_conversions():
    x = tg.tensor([1.7, -2.2])
    assert x.double().dtype == np.float64
    assert x.long().tolist() == [1, -2]
    assert x.float() is x  # already float32: no copy, no node
    assert x.bool().tolist() == [True, True]
    assert x.to(np.float16).dtype == np.float16
    assert x.astype("float64").dtype == np.float64
    c = x.clone()
    assert c.numpy() is not x.numpy()
    np.testing.assert_array_equal(c.numpy(), x.numpy())
    t = tg.from_numpy(np.ones((3, 2)).T)
    assert not t.numpy().flags.c_contiguous and t.contiguous().numpy().flags.c_contiguous


def test_repr_is_readable():
    r = repr(tg.tensor([1.0, 2.5]))
    assert r.startswith("tensor(") and "1." in r and "2.5" in r
    assert "dtype" not in r  # float32 is the default, not repeated
    assert "dtype=float64" in repr(Tensor(np.zeros(2)))
    assert "requires_grad=True" in repr(tg.tensor([1.0], requires_grad=True))
    x = tg.tensor([1.0], requires_grad=True)
    assert "grad_fn=<MulScalar>" in repr(x * 2)
    assert repr(tg.arange(3)) == "tensor([0, 1, 2])"
    assert repr(tg.tensor(True)) == "tensor(True)"
    big = repr(tg.zeros(100, 100))
    assert "..." in big and len(big) < 2000  # summarised, like NumPy


# --------------------------------------------------------------------------------------------
# indexing (forward; the gradients are in test_ops_grad.py)
# --------------------------------------------------------------------------------------------

@given(a=float_arrays(shapes(min_dims=2, min_side=1)))
def test_indexing_matches_numpy(a):
    x = Tensor(a)
    for index in [0, -1, (0, 0), (slice(None), 0), (Ellipsis, -1), (None, 0),
                  slice(None, None, -1), (slice(1, None), slice(None, 1))]:
        np.testing.assert_array_equal(x[index].numpy(), a[index])
    np.testing.assert_array_equal(x[a > 0].numpy(), a[a > 0])
    np.testing.assert_array_equal(x[[0, 0, -1]].numpy(), a[[0, 0, -1]])
    np.testing.assert_array_equal(x[tg.tensor([0, 0])].numpy(), a[[0, 0]])
    np.testing.assert_array_equal(x[np.int64(0)].numpy(), a[0])
    np.testing.assert_array_equal(x[[]].numpy(), a[np.array([], dtype=np.int64)])


def test_basic_indexing_is_a_view_advanced_is_a_copy():
    x = Tensor(np.arange(6.0))
    v = x[1:4]
    assert np.shares_memory(v.numpy(), x.numpy())
    c = x[[1, 2]]
    assert not np.shares_memory(c.numpy(), x.numpy())


def test_setitem():
    x = tg.zeros(3, 4)
    x[0] = 1.0
    x[1, 1:3] = tg.tensor([2.0, 3.0])
    x[x > 2.5] = -1.0
    x[[2, 2], [0, 3]] = 5.0
    expected = np.zeros((3, 4), dtype=np.float32)
    expected[0] = 1
    expected[1, 1:3] = [2, -1]
    expected[2, [0, 3]] = 5
    np.testing.assert_array_equal(x.numpy(), expected)


# --------------------------------------------------------------------------------------------
# in-place ops (values; their interaction with autograd is in test_autograd.py)
# --------------------------------------------------------------------------------------------

def test_inplace_ops_modify_the_same_tensor_and_its_views():
    x = tg.tensor([1.0, 2.0, 3.0])
    data = x.numpy()
    view = x[1:]
    y = x
    y += 1
    assert y is x and x.numpy() is data
    x.mul_(2)
    x.sub_(tg.tensor([1.0, 1.0, 1.0]), alpha=0.5)
    x.add_(1.0, alpha=2.0)
    x /= 2
    np.testing.assert_allclose(x.numpy(), ((np.array([1.0, 2, 3]) + 1) * 2 - 0.5 + 2) / 2)
    np.testing.assert_allclose(view.numpy(), x.numpy()[1:])
    assert view._version is x._version  # views share the version counter
    x.fill_(0.5)
    np.testing.assert_array_equal(x.numpy(), [0.5] * 3)


def test_inplace_broadcasts_like_numpy():
    x = tg.zeros(2, 3)
    x += tg.tensor([1.0, 2.0, 3.0])
    x *= tg.tensor([[1.0], [2.0]])
    np.testing.assert_array_equal(x.numpy(), [[1, 2, 3], [2, 4, 6]])


def test_inplace_keeps_the_dtype():
    x = tg.tensor([1.0, 2.0])  # float32
    x += Tensor(np.array([0.5, 0.5]))  # float64 operand
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x.numpy(), [1.5, 2.5])
    i = tg.arange(3)
    i *= 2
    assert i.dtype == np.int64 and i.tolist() == [0, 2, 4]


def test_iteration_and_len():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    assert len(x) == 3
    assert [row.tolist() for row in x] == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


def test_any_all_and_logical_ops():
    m = tg.tensor([True, False])
    assert m.any().item() is True and m.all().item() is False
    assert (~m).tolist() == [False, True]


def test_tensors_hash_by_identity():
    a, b = tg.tensor([1.0]), tg.tensor([1.0])
    assert len({a, b}) == 2
    assert {a: 1}[a] == 1


@given(st.floats(-1e3, 1e3, allow_nan=False, width=32))
def test_python_float_roundtrip(v):
    assert tg.tensor(v).item() == np.float32(v)
