"""PyTorch spellings mean what they mean in PyTorch (issue 9, part 1, Tensor level).

Every expected value here is computed by hand or with NumPy: PyTorch is not needed. Where a
name exists in PyTorch, the test pins PyTorch's behaviour (arguments, defaults, return values,
exception classes); gradients of the new ops are checked against finite differences in
tests/test_ops_grad.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tg
import tinygrad_lite.nn.functional as F
from tinygrad_lite import Tensor
from tinygrad_lite.testing import float_arrays, gradcheck, shapes


def leaf(a) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def close(actual, expected, rtol=1e-6, atol=1e-8):
    actual = actual.numpy() if isinstance(actual, Tensor) else np.asarray(actual)
    assert actual.shape == np.shape(expected)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------------
# max / min along a dim: (values, indices)
# --------------------------------------------------------------------------------------------

def test_max_dim_returns_values_and_indices_not_row_zero():
    """The bug that started it: `x.max(1)[0]` gave row 0's maximum; in torch it is the maxima."""
    x = leaf([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    close(x.max(1)[0], [5.0, 6.0])
    result = x.max(1)
    assert type(result).__name__ == "max" and isinstance(result, tuple) and len(result) == 2
    close(result.values, [5.0, 6.0])
    np.testing.assert_array_equal(result.indices.numpy(), [1, 2])
    assert result.indices.dtype == np.int64
    values, indices = x.min(dim=0, keepdim=True)
    close(values, [[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(indices.numpy(), [[0, 1, 0]])
    assert type(x.min(0)).__name__ == "min"


def test_max_without_dim_is_the_scalar_and_max_of_a_tensor_is_maximum():
    x = leaf([[1.0, 5.0], [4.0, -2.0]])
    close(x.max(), 5.0)
    close(x.min(), -2.0)
    close(x.max(keepdim=True), [[5.0]])
    close(x.max(Tensor(np.full((2, 2), 3.0))), [[3.0, 5.0], [4.0, 3.0]])
    close(x.min(Tensor(np.full((2, 2), 3.0))), [[1.0, 3.0], [3.0, -2.0]])


def test_max_dim_gradient_flows_through_values_to_the_index():
    x = leaf([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    (x.max(1).values * Tensor(np.array([2.0, 3.0]))).sum().backward()
    close(x.grad, [[0.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    gradcheck(lambda x: x.min(0, keepdim=True).values, [leaf([[1.0, 5.0], [4.0, 2.0]])])


def test_max_dim_rejects_a_tuple_and_an_empty_dimension():
    x = tg.ones(2, 3)
    with pytest.raises(TypeError, match=r"max\(\): dim must be an int.*amax"):
        x.max(dim=(0, 1))
    with pytest.raises(IndexError, match=r"min\(\).*size 0"):
        tg.ones(2, 0).min(1)
    close(tg.ones(0, 3).max(1).values, np.zeros(0))  # reducing a non-empty dim is fine


def test_amax_amin_take_several_dims():
    a = np.arange(24.0).reshape(2, 3, 4)
    close(Tensor(a).amax((0, 2)), a.max(axis=(0, 2)))
    close(Tensor(a).amin(-1, keepdim=True), a.min(axis=-1, keepdims=True))
    close(Tensor(a).amax(), a.max())


# --------------------------------------------------------------------------------------------
# dim= / keepdim= everywhere, axis= / keepdims= as aliases
# --------------------------------------------------------------------------------------------

@st.composite
def array_and_dim(draw, min_side=1):
    shape = draw(shapes(min_dims=1, min_side=min_side))
    a = draw(float_arrays(shape))
    dims = st.integers(-len(shape), len(shape) - 1)
    dim = draw(dims | st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True).map(tuple))
    return a, dim, draw(st.booleans())


def _np_var(a, dim, keepdim, ddof):
    return np.var(a, axis=dim, keepdims=keepdim, ddof=ddof)


REDUCTIONS = {  # name: (NumPy reference taking (a, dim, keepdim), minimum side length)
    "sum": (lambda a, d, k: np.sum(a, axis=d, keepdims=k), 0),
    "mean": (lambda a, d, k: np.mean(a, axis=d, keepdims=k), 1),
    "var": (lambda a, d, k: _np_var(a, d, k, 1), 2),
    "std": (lambda a, d, k: np.std(a, axis=d, keepdims=k, ddof=1), 2),
    "amax": (lambda a, d, k: np.max(a, axis=d, keepdims=k), 1),
    "amin": (lambda a, d, k: np.min(a, axis=d, keepdims=k), 1),
    "logsumexp": (lambda a, d, k: np.log(np.sum(np.exp(a), axis=d, keepdims=k)), 1),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(data=st.data())
def test_reductions_take_dim_and_keepdim_like_numpy_axis_and_keepdims(name, data):
    ref, min_side = REDUCTIONS[name]
    a, dim, keepdim = data.draw(array_and_dim(min_side))
    x = Tensor(a)
    expected = ref(a, dim, keepdim)
    close(getattr(x, name)(dim=dim, keepdim=keepdim), expected)
    if name not in ("var", "std"):  # their second positional argument is unbiased, as in torch
        close(getattr(x, name)(dim, keepdim), expected)
    if name not in ("amax", "amin"):  # (torch's amax/amin have no NumPy-named twin here)
        close(getattr(x, name)(axis=dim, keepdims=keepdim), expected)


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "max", "min", "logsumexp",
                                  "argmax", "argmin", "squeeze"])
def test_dim_and_axis_together_are_a_type_error_naming_the_function(name):
    x = tg.ones(2, 3)
    with pytest.raises(TypeError, match=rf"{name}\(\) got both dim=1 and axis=0"):
        getattr(x, name)(dim=1, axis=0)
    if name != "squeeze":
        with pytest.raises(TypeError, match=rf"{name}\(\) got both keepdim and keepdims"):
            getattr(x, name)(dim=1, keepdim=True, keepdims=True)


@given(data=st.data())
def test_argmax_argmin_with_dim_and_keepdim(data):
    shape = data.draw(shapes(min_dims=1, min_side=1))
    a = data.draw(float_arrays(shape))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keepdim = data.draw(st.booleans())
    for name in ("argmax", "argmin"):
        out = getattr(Tensor(a), name)(dim=dim, keepdim=keepdim)
        np.testing.assert_array_equal(out.numpy(),
                                      getattr(np, name)(a, axis=dim, keepdims=keepdim))


@given(data=st.data())
def test_softmax_and_log_softmax_take_dim(data):
    shape = data.draw(shapes(min_dims=1, min_side=1))
    a = data.draw(float_arrays(shape))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    e = np.exp(a - a.max(axis=dim, keepdims=True))
    expected = e / e.sum(axis=dim, keepdims=True)
    x = Tensor(a)
    for out in (x.softmax(dim=dim), x.softmax(axis=dim), F.softmax(x, dim=dim)):
        close(out, expected, rtol=1e-10, atol=1e-12)
    close(x.log_softmax(dim=dim), np.log(expected), rtol=1e-9, atol=1e-12)
    close(F.log_softmax(x, dim=dim), np.log(expected), rtol=1e-9, atol=1e-12)
    with pytest.raises(TypeError, match=r"softmax\(\) got both dim"):
        x.softmax(dim=0, axis=-1)


def test_joining_splitting_and_squeezing_take_dim():
    a = np.arange(6.0).reshape(2, 3)
    x = Tensor(a)
    close(tg.cat([x, x], dim=1), np.concatenate([a, a], axis=1))
    close(tg.cat([x, x], axis=1), np.concatenate([a, a], axis=1))
    close(tg.stack([x, x], dim=2), np.stack([a, a], axis=2))
    pieces = x.split(2, dim=1)
    assert isinstance(pieces, tuple)  # torch returns a tuple
    close(pieces[0], a[:, :2])
    close(pieces[1], a[:, 2:])
    close(x.chunk(2, dim=0)[1], a[1:])
    close(x.chunk(3, axis=1)[2], a[:, 2:])
    assert x.unsqueeze(dim=1).shape == (2, 1, 3) and x.unsqueeze(-1).shape == (2, 3, 1)
    y = tg.ones(1, 3, 1)
    assert y.squeeze(dim=0).shape == (3, 1) and y.squeeze().shape == (3,)
    assert y.squeeze(dim=(0, 2)).shape == (3,)
    assert y.squeeze(1).shape == (1, 3, 1)  # not of size 1: left as it is, as in torch
    assert x.flatten(start_dim=0, end_dim=1).shape == (6,)
    with pytest.raises(TypeError, match=r"cat\(\) got both dim=1 and axis=0"):
        tg.cat([x, x], dim=1, axis=0)
    with pytest.raises(TypeError, match=r"unsqueeze\(\) missing"):
        x.unsqueeze()


# --------------------------------------------------------------------------------------------
# var / std: unbiased= and correction=
# --------------------------------------------------------------------------------------------

def test_var_std_unbiased_and_correction():
    a = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 9.0]])
    x = Tensor(a)
    close(x.var(), np.var(a, ddof=1))  # torch's default: Bessel's correction
    close(x.var(unbiased=False), np.var(a))
    close(x.var(1, True), np.var(a, axis=1, ddof=1))  # torch: var(dim, unbiased, keepdim)
    close(x.var(1, False, True), np.var(a, axis=1, ddof=0, keepdims=True))
    close(x.var(dim=0, correction=0), np.var(a, axis=0))
    close(x.var(correction=2), np.sum((a - a.mean()) ** 2) / (a.size - 2))
    close(x.std(dim=1, unbiased=False, keepdim=True), np.std(a, axis=1, keepdims=True))
    close(x.std(correction=0), np.std(a))
    with pytest.raises(TypeError, match=r"var\(\) got both unbiased=True and correction=1"):
        x.var(unbiased=True, correction=1)
    with pytest.raises(TypeError, match=r"std\(\): unbiased must be a bool"):
        x.std(0, 2)


# --------------------------------------------------------------------------------------------
# shapes, sizes, devices, dtypes
# --------------------------------------------------------------------------------------------

def test_reshape_view_dim_and_size():
    x = tg.arange(6)
    assert x.reshape(shape=(2, 3)).shape == (2, 3)
    assert x.view(3, -1).shape == (3, 2) and x.view(shape=(6,)).shape == (6,)
    with pytest.raises(TypeError, match=r"reshape\(\)"):
        x.reshape(2, shape=(3,))
    y = tg.ones(2, 3, 4)
    assert y.dim() == 3 and tg.tensor(1.0).dim() == 0
    assert y.size() == (2, 3, 4) and y.size(1) == 3 and y.size(-1) == 4 and y.size(-3) == 2
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of "
                                         r"\[-3, 2\], but got 3\)"):
        y.size(3)
    with pytest.raises(IndexError, match="Dimension out of range"):
        y.size(-4)
    with pytest.raises(IndexError, match="no dimensions"):
        tg.tensor(1.0).size(0)


def test_device_is_cpu_and_other_devices_fail_clearly():
    x = tg.ones(2)
    assert x.device == "cpu"
    assert x.to("cpu") is x and x.cpu() is x
    assert x.to("cpu", tg.float64).dtype == np.float64
    with pytest.raises(RuntimeError, match=r"to\(\): device 'cuda' is not available.*CPU only"):
        x.to("cuda")
    with pytest.raises(RuntimeError, match="cuda:0"):
        x.to(device="cuda:0")
    with pytest.raises(RuntimeError, match="CPU only"):
        x.cuda()


def test_torch_dtype_names_and_conversions():
    assert tg.float is np.float32 and tg.double is np.float64 and tg.half is np.float16
    assert tg.int is np.int32 and tg.long is np.int64 and tg.bool is np.bool_
    assert tg.short is np.int16
    x = tg.tensor([1.7, -2.2])
    assert x.to(tg.long).dtype == np.int64 and x.to(tg.long).tolist() == [1, -2]
    assert x.to(dtype=tg.double).dtype == np.float64
    assert x.to(tg.ones(1, dtype=tg.int)).dtype == np.int32  # to(other): other's dtype
    assert x.int().dtype == np.int32 and x.half().dtype == np.float16
    assert x.long().dtype == np.int64 and x.bool().dtype == np.bool_
    assert tg.zeros(2, dtype=tg.long).dtype == np.int64
    assert tg.arange(3.0).dtype == np.float32 and tg.arange(3).dtype == np.int64
    assert tg.full(3, 2).shape == (3,)


# --------------------------------------------------------------------------------------------
# tril / triu, topk
# --------------------------------------------------------------------------------------------

def test_tril_triu_values_and_errors():
    a = np.arange(1.0, 13.0).reshape(3, 4)
    close(tg.tril(Tensor(a)), np.tril(a))
    close(tg.triu(Tensor(a), diagonal=1), np.triu(a, 1))
    close(Tensor(a).tril(-1), np.tril(a, -1))
    b = np.arange(24).reshape(2, 3, 4)  # batched, and integer tensors too
    np.testing.assert_array_equal(tg.triu(Tensor(b)).numpy(), np.triu(b))
    x = leaf(a)
    x.tril().sum().backward()
    close(x.grad, np.tril(np.ones((3, 4))))  # the gradient is the same mask
    with pytest.raises(RuntimeError, match="tril.*at least 2 dimensions"):
        tg.tril(tg.ones(3))


def test_topk_values_indices_and_errors():
    x = Tensor(np.array([[1.0, 7.0, 3.0, 5.0], [2.0, np.nan, 0.0, 9.0]]))
    values, indices = tg.topk(x, 2)
    close(values, [[7.0, 5.0], [np.nan, 9.0]])  # NaN counts as the largest, as in torch
    np.testing.assert_array_equal(indices.numpy(), [[1, 3], [1, 3]])
    result = x.topk(1, dim=0, largest=False)
    assert type(result).__name__ == "topk"
    close(result.values, [[1.0, 7.0, 0.0, 5.0]])
    np.testing.assert_array_equal(result.indices.numpy(), [[0, 0, 1, 0]])
    with pytest.raises(RuntimeError, match=r"topk\(\): selected index k=5 is out of range"):
        x.topk(5)
    y = leaf([3.0, 1.0, 2.0])
    y.topk(2).values.sum().backward()
    close(y.grad, [1.0, 0.0, 1.0])


# --------------------------------------------------------------------------------------------
# multinomial, randint
# --------------------------------------------------------------------------------------------

def test_multinomial_with_replacement_follows_the_probabilities():
    tg.manual_seed(0)
    probs = Tensor(np.array([0.2, 0.0, 0.5, 0.3]))
    draws = tg.multinomial(probs, 20000, replacement=True)
    assert draws.shape == (20000,) and draws.dtype == np.int64
    freq = np.bincount(draws.numpy(), minlength=4) / 20000
    assert freq[1] == 0.0  # a zero-probability category is never drawn
    np.testing.assert_allclose(freq, [0.2, 0.0, 0.5, 0.3], atol=0.015)
    tg.manual_seed(0)  # the package generator: reseeding repeats the draws
    np.testing.assert_array_equal(tg.multinomial(probs, 20000, True).numpy(), draws.numpy())


def test_multinomial_without_replacement_is_sequential_sampling():
    tg.manual_seed(1)
    weights = Tensor(np.tile(np.array([[5.0, 3.0, 2.0, 0.0]]), (6000, 1)))  # unnormalised rows
    draws = tg.multinomial(weights, 2).numpy()
    assert draws.shape == (6000, 2)
    assert (draws[:, 0] != draws[:, 1]).all() and (draws != 3).all()
    # P(first = 0) = 0.5; P(first = 0, second = 1) = 0.5 * 0.3 / (1 - 0.5) = 0.3
    assert abs(np.mean(draws[:, 0] == 0) - 0.5) < 0.03
    assert abs(np.mean((draws[:, 0] == 0) & (draws[:, 1] == 1)) - 0.3) < 0.03
    every = tg.multinomial(Tensor(np.array([1.0, 1.0, 1.0])), 3).numpy()
    assert sorted(every.tolist()) == [0, 1, 2]
    gen = np.random.default_rng(5)
    first = tg.multinomial(weights[:3], 1, generator=gen).numpy()
    np.testing.assert_array_equal(
        first, tg.multinomial(weights[:3], 1, generator=np.random.default_rng(5)).numpy())


@pytest.mark.parametrize("probs, n, replacement, message", [
    ([0.5, -0.1, 0.6], 1, True, "contains either `inf`, `nan` or element < 0"),
    ([0.5, np.nan], 1, True, "contains either `inf`, `nan` or element < 0"),
    ([0.5, np.inf], 1, True, "contains either `inf`, `nan` or element < 0"),
    ([0.0, 0.0], 1, True, r"sum of probabilities <= 0"),
    ([[0.5, 0.5], [0.0, 0.0]], 1, False, r"sum of probabilities <= 0"),
    ([0.5, 0.5], 3, False, "cannot sample n_sample > prob_dist.size\\(-1\\)"),
    ([0.5, 0.0, 0.5], 3, False, "not enough non-zero categories"),
    ([0.5, 0.5], 0, True, "n_sample <= 0"),
    ([[[0.5, 0.5]]], 1, True, "must be 1 or 2 dim"),
])
def test_multinomial_rejects_bad_probabilities_like_torch(probs, n, replacement, message):
    with pytest.raises(RuntimeError, match=message):
        tg.multinomial(Tensor(np.array(probs)), n, replacement)


def test_randint_signatures_range_and_errors():
    tg.manual_seed(3)
    a = tg.randint(10, (1000,))
    b = tg.randint(-3, 3, size=(4, 250))
    assert a.dtype == np.int64 and a.shape == (1000,)
    assert a.numpy().min() >= 0 and a.numpy().max() <= 9 and len(set(a.tolist())) == 10
    assert b.shape == (4, 250) and b.numpy().min() >= -3 and b.numpy().max() <= 2
    assert tg.randint(0, 5, (3,), dtype=tg.int).dtype == np.int32
    with pytest.raises(RuntimeError, match="low=5 >= high=5"):
        tg.randint(5, 5, (2,))
    with pytest.raises(TypeError, match=r"randint\(high, size\)"):
        tg.randint(5)


# --------------------------------------------------------------------------------------------
# masked_fill
# --------------------------------------------------------------------------------------------

def test_masked_fill_with_bool_tensor_and_array_broadcasting_like_torch():
    a = np.arange(6.0).reshape(2, 3)
    mask = np.array([True, False, True])
    close(Tensor(a).masked_fill(Tensor(mask), -1.0), np.where(mask, -1.0, a))
    close(Tensor(a).masked_fill(mask, -1.0), np.where(mask, -1.0, a))  # a bool ndarray too
    column = np.array([[True], [False]])
    close(Tensor(a).masked_fill(column, 9.0), np.where(column, 9.0, a))
    big = np.zeros((4, 2, 3), dtype=bool)
    big[1] = True
    assert Tensor(a).masked_fill(big, 0.0).shape == (4, 2, 3)  # both broadcast, as in torch
    ints = tg.tensor([1, 2, 3]).masked_fill(tg.tensor([True, False, False]), 7.9)
    assert ints.dtype == np.int64 and ints.tolist() == [7, 2, 3]  # value takes self's dtype
    value = leaf(5.0)
    x = leaf(a)
    out = x.masked_fill(Tensor(mask), value)
    out.sum().backward()
    close(x.grad, np.where(mask, 0.0, 1.0) * np.ones((2, 3)))
    close(value.grad, 4.0)  # the value gets the gradient of every position it filled
    with pytest.raises(RuntimeError, match="only supports boolean masks.*int64"):
        Tensor(a).masked_fill(np.array([1, 0, 1]), 0.0)
    with pytest.raises(RuntimeError, match="0-dimensional value tensor"):
        Tensor(a).masked_fill(mask, tg.ones(2))


# --------------------------------------------------------------------------------------------
# Tensor(ndarray) copies; from_numpy shares
# --------------------------------------------------------------------------------------------

def test_changing_the_array_after_making_a_tensor_no_longer_changes_the_gradient():
    a = np.array([1.0, 2.0, 3.0])
    x = Tensor(a, requires_grad=True)
    y = (x * x).sum()  # dy/dx = 2x, read at backward time
    a[:] = 100.0
    y.backward()
    close(x.grad, [2.0, 4.0, 6.0])
    close(x, [1.0, 2.0, 3.0])


def test_from_numpy_shares_memory_both_ways():
    a = np.array([1.0, 2.0], dtype=np.float32)
    t = tg.from_numpy(a)
    a[0] = 5.0
    assert t.tolist() == [5.0, 2.0] and t.dtype == np.float32
    t += 1
    assert a.tolist() == [6.0, 3.0]
    assert "bypass the version check" in tg.from_numpy.__doc__
    with pytest.raises(TypeError, match="from_numpy: expected an np.ndarray, got list"):
        tg.from_numpy([1.0])


# --------------------------------------------------------------------------------------------
# nll_loss
# --------------------------------------------------------------------------------------------

def _np_nll(logp, target, ignore_index=-100, reduction="mean"):
    keep = target != ignore_index
    losses = np.where(keep, -logp[np.arange(len(target)), np.where(keep, target, 0)], 0.0)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / keep.sum()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_ignore_index_and_reduction(reduction):
    logp = np.log(np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1],
                            [0.3, 0.3, 0.4]]))
    target = np.array([1, -100, 0, 2])
    out = F.nll_loss(leaf(logp), target, reduction=reduction)
    close(out, _np_nll(logp, target, reduction=reduction), rtol=1e-12)
    if reduction == "mean":  # by hand: (-log 0.5 - log 0.6 - log 0.4) / 3 non-ignored
        close(out, -(np.log(0.5) + np.log(0.6) + np.log(0.4)) / 3, rtol=1e-12)
    gradcheck(lambda x: F.nll_loss(x, target, reduction=reduction), [leaf(logp)])
    t2 = np.array([1, 2, 2, 0])
    close(F.nll_loss(leaf(logp), t2, ignore_index=2, reduction=reduction),
          _np_nll(logp, t2, 2, reduction), rtol=1e-12)
    gradcheck(lambda x: F.nll_loss(x, t2, ignore_index=2, reduction=reduction), [leaf(logp)])


def test_nll_loss_layouts_and_all_ignored():
    logp = np.log(np.array([0.2, 0.5, 0.3]))
    close(F.nll_loss(leaf(logp), np.array(1)), -np.log(0.5))
    a = np.random.default_rng(0).normal(size=(2, 3, 4))  # (N, C, d1)
    t = np.array([[0, 1, 2, 1], [2, 2, 0, 1]])
    flat = np.moveaxis(a, 1, -1).reshape(-1, 3)
    close(F.nll_loss(leaf(a), t, reduction="none"),
          _np_nll(flat, t.reshape(-1), reduction="none").reshape(2, 4))
    with np.errstate(all="ignore"):
        assert np.isnan(F.nll_loss(leaf(logp[None]), np.array([-100])).item())  # 0/0, as torch


@pytest.mark.parametrize("bad", [-1, 3, 7])
def test_nll_loss_out_of_range_target_is_an_index_error(bad):
    with pytest.raises(IndexError, match=rf"nll_loss: Target {bad} is out of bounds for 3 "
                                         rf"classes"):
        F.nll_loss(tg.zeros(2, 3), np.array([0, bad]))


def test_nll_loss_third_positional_argument_is_weight_as_in_torch():
    with pytest.raises(NotImplementedError, match="nll_loss: class weights"):
        F.nll_loss(tg.zeros(2, 3), np.array([0, 1]), tg.ones(3))
    with pytest.raises(TypeError, match="nll_loss: targets must be integer"):
        F.nll_loss(tg.zeros(2, 3), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="nll_loss: reduction"):
        F.nll_loss(tg.zeros(2, 3), np.array([0, 1]), reduction="avg")


# --------------------------------------------------------------------------------------------
# small activations: exact values at hand-picked points
# --------------------------------------------------------------------------------------------

def test_activation_values_by_hand():
    x = Tensor(np.array([-4.0, -1.0, 0.0, 2.0, 7.0, 30.0]))
    close(x.sign(), [-1.0, -1.0, 0.0, 1.0, 1.0, 1.0])
    close(x.relu6(), [0.0, 0.0, 0.0, 2.0, 6.0, 6.0])
    close(x.hardswish(), [0.0, -1 * 2 / 6, 0.0, 2 * 5 / 6, 7.0, 30.0])
    sp = x.softplus()
    assert sp.numpy()[-1] == 30.0  # above the threshold softplus is exactly x, as in torch
    close(sp.numpy()[:5], np.log1p(np.exp(x.numpy()[:5])))
    close(F.softplus(x, beta=2.0).numpy()[:4], np.log1p(np.exp(2 * x.numpy()[:4])) / 2)
    close(x.silu().numpy()[:5], x.numpy()[:5] / (1 + np.exp(-x.numpy()[:5])))
    close(F.mish(x).numpy()[:5], x.numpy()[:5] * np.tanh(np.log1p(np.exp(x.numpy()[:5]))))
    assert np.isfinite(Tensor(np.array([-1000.0, 1000.0])).mish().numpy()).all()
    s = leaf([-2.0, 3.0])
    s.sign().sum().backward()
    close(s.grad, [0.0, 0.0])


def test_any_all_take_dim_and_keepdim():
    a = np.array([[0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(Tensor(a).any(dim=1).numpy(), a.any(axis=1))
    np.testing.assert_array_equal(Tensor(a).all(0, keepdim=True).numpy(),
                                  a.all(axis=0, keepdims=True))
    assert bool(Tensor(a).any()) and not bool(Tensor(a).all())


def test_activation_and_masked_fill_option_errors():
    x = tg.ones(3)
    with pytest.raises(ValueError, match="softplus: beta must be a finite number other than 0"):
        x.softplus(beta=0)
    with pytest.raises(ValueError, match="softplus: threshold"):
        F.softplus(x, threshold=float("nan"))
    with pytest.raises(TypeError, match="masked_fill: value must be a number"):
        x.masked_fill(x > 0, "a")


def test_argmax_takes_one_dim_and_works_on_0d():
    with pytest.raises(TypeError, match=r"argmax\(\): dim must be an int, got \(0, 1\)"):
        tg.ones(2, 3).argmax(dim=(0, 1))
    assert tg.tensor(3.0).argmax(0).item() == 0 and tg.tensor(3.0).max(0).indices.item() == 0


def test_a_dim_out_of_range_is_an_index_error_and_0d_tensors_have_dim_0():
    x = tg.ones(2, 3)
    for call in (lambda: x.sum(2), lambda: x.mean(dim=-3), lambda: x.max(5), lambda: x.topk(1, 2),
                 lambda: x.unsqueeze(4), lambda: tg.cat([x, x], 2), lambda: x.softmax(2)):
        with pytest.raises(IndexError, match="out of range"):
            call()
    with pytest.raises(RuntimeError, match="appears multiple times"):
        x.sum((1, -1))
    scalar = tg.tensor(3.0)
    assert scalar.sum(0).item() == 3.0 and scalar.mean(-1).item() == 3.0
    assert scalar.max(0).values.item() == 3.0


def test_an_empty_dim_is_refused_rather_than_guessed():
    """torch.sum(x, dim=()) sums everything, np.sum(a, axis=()) nothing: never pick silently."""
    x = tg.ones(2, 3)
    with pytest.raises(ValueError, match=r"sum\(\): dim=\(\) means every dim in PyTorch"):
        x.sum(())
    with pytest.raises(ValueError, match=r"mean\(\): dim=\(\)"):
        x.mean(dim=[])
    assert x.sum(axis=()).shape == (2, 3)  # NumPy's spelling keeps NumPy's meaning
    assert x.amax(()).item() == 1.0  # torch.amax's documented default: every dim


def test_module_functions_name_a_non_tensor_input():
    for fn in (tg.tril, tg.triu, lambda a: tg.topk(a, 1)):
        with pytest.raises(TypeError, match=r"argument 'input' must be a Tensor, not ndarray"):
            fn(np.ones((2, 2)))
