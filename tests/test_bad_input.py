"""The rules behind the fuzz test of the public API (tests/test_fuzz_public_api.py), one focused
test each: what a Tensor method does with a 0-d result, NaN/Inf, and arguments of the wrong type
or range. The fuzz test is the net; these document the rules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_lite as tg


# -- 0-d results are 0-d arrays ---------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: tg.tensor(True) + 1,
    lambda: tg.tensor([1.0, 2.0])[1],
    lambda: tg.tensor(2) * 3,
    lambda: tg.tensor(1.5).exp(),
    lambda: tg.tensor([1.0, 2.0]).mean(),
    lambda: tg.tensor(1.0) == 1.0,
    lambda: ~tg.tensor(True),
])
def test_a_0d_result_holds_a_0d_ndarray_not_a_numpy_scalar(make):
    t = make()
    assert type(t.data) is np.ndarray and t.data.shape == ()
    t.fill_(0)  # an ndarray can be written in place; a NumPy scalar could not
    assert t.item() == 0


# -- NaN/Inf are computed silently, as in PyTorch ---------------------------------------------

@pytest.fixture
def warnings_are_errors():
    """NumPy's default error state (as a user has it), with every warning turned into an error."""
    with warnings.catch_warnings(), np.errstate(divide="warn", over="warn", invalid="warn"):
        warnings.simplefilter("error")
        yield


def test_nan_and_inf_flow_through_forward_and_backward_without_warnings(warnings_are_errors):
    x = tg.tensor([np.inf, 0.0, -1.0], dtype=np.float64, requires_grad=True)
    y = x * 0 + x.log() + x.sqrt() + (x - x) + x / 0 + x ** -1.0 + x.sin() + x.sigmoid()
    y.sum().backward()
    assert np.isnan(y.data).all()  # each element meets a NaN somewhere: inf * 0, log(-1), ...
    np.testing.assert_array_equal(np.isnan(x.grad.data), [True, True, True])


def test_inplace_ops_and_casts_are_silent_too(warnings_are_errors):
    t = tg.tensor([np.inf, 1.0])
    t -= np.inf
    t /= 0
    np.testing.assert_array_equal(t.data, [np.nan, -np.inf])  # (inf - inf) / 0, (1 - inf) / 0
    assert tg.tensor([np.nan]).long().dtype == np.int64        # value undefined, as in torch
    assert tg.tensor([np.nan], dtype=np.int32).dtype == np.int32


# -- arguments of the wrong type or range: the error names the method -------------------------

def _refused(exc, call, *words):
    with pytest.raises(exc) as info:
        call()
    for word in words:
        assert word.lower() in str(info.value).lower(), (word, str(info.value))


@pytest.mark.parametrize("other", ["abc", None, {}, 1j, object(), ["a", "b"]])
def test_an_operand_that_is_not_numbers_is_a_type_error_naming_the_op(other):
    t = tg.tensor([1.0, 2.0])
    _refused(TypeError, lambda: t + other, "add")
    _refused(TypeError, lambda: t * other, "mul")
    _refused(TypeError, lambda: t == other, "==")
    _refused(TypeError, lambda: t.maximum(other), "maximum")
    _refused(TypeError, lambda: t.add_(other), "add_")
    _refused(TypeError, lambda: t.__isub__(other), "-=")


@pytest.mark.parametrize("dtype", ["float99", 5, object(), np.complex128, np.object_])
def test_a_dtype_that_tensors_cannot_hold_is_a_type_error(dtype):
    t = tg.tensor([1.0])
    _refused(TypeError, lambda: t.to(dtype), "to")
    _refused(TypeError, lambda: t.astype(dtype), "astype")
    _refused(TypeError, lambda: tg.Tensor([1.0], dtype=dtype), "tensor")


@pytest.mark.parametrize("call, exc, words", [
    (lambda t: t.sum(3), IndexError, ["sum", "Dimension out of range"]),
    (lambda t: t.sum("0"), TypeError, ["sum", "dim"]),
    (lambda t: t.transpose(1.5, 0), TypeError, ["transpose", "dim"]),
    (lambda t: t.permute("a", 0), TypeError, ["permute"]),
    (lambda t: t.unsqueeze("0"), TypeError, ["unsqueeze"]),
    (lambda t: t.flatten(end_dim="0"), TypeError, ["flatten"]),
    (lambda t: t.softmax(dim=1j), TypeError, ["softmax"]),
    (lambda t: t.unsqueeze(4), IndexError, ["unsqueeze", "Dimension out of range"]),
])
def test_dims_of_the_wrong_type_or_out_of_range(call, exc, words):
    _refused(exc, lambda: call(tg.ones(2, 3)), *words)


def test_0d_tensors_have_dims_0_and_minus_1_but_cannot_be_split():
    s = tg.tensor(5.0)
    assert s.transpose(0, -1).shape == () and s.squeeze(0).shape == ()
    assert s.flatten().shape == (1,)
    _refused(TypeError, lambda: s.flatten(end_dim="0"), "flatten")
    _refused(RuntimeError, lambda: s.split(1), "split")
    _refused(RuntimeError, lambda: s.chunk(1), "chunk")


@pytest.mark.parametrize("call, words", [
    (lambda t: t.sum(0, keepdim="yes"), ["sum", "keepdim"]),
    (lambda t: t.argmax(0, keepdims="no"), ["argmax", "keepdims"]),
    (lambda t: t.requires_grad_("no"), ["requires_grad_"]),
    (lambda t: tg.Tensor([1.0], requires_grad="no"), ["tensor", "requires_grad"]),
    (lambda t: t.topk(1, sorted="no"), ["topk", "sorted"]),
    (lambda t: (t * 2).sum().backward(create_graph="no"), ["backward", "create_graph"]),
    (lambda t: tg.set_grad_enabled("no"), ["set_grad_enabled"]),
])
def test_a_flag_must_be_a_bool_not_a_truthy_string(call, words):
    _refused(TypeError, lambda: call(tg.ones(2, 3, requires_grad=True)), *words)


@pytest.mark.parametrize("call, exc, words", [
    (lambda t: t.reshape(-2, 3), RuntimeError, ["reshape", "-2"]),
    (lambda t: t.view(-1, -1), RuntimeError, ["reshape", "one dimension"]),
    (lambda t: t.chunk(2.5), TypeError, ["chunk"]),
    (lambda t: t.split(1.5), TypeError, ["split"]),
    (lambda t: t.expand(2.5, 3), TypeError, ["expand"]),
    (lambda t: t.fill_(None), TypeError, ["fill_"]),
    (lambda t: t.fill_("a"), TypeError, ["fill_"]),
    (lambda t: t.long().fill_(np.inf), RuntimeError, ["fill_", "overflow"]),
    (lambda t: t.long().__setitem__(0, np.nan), RuntimeError, ["__setitem__", "overflow"]),
    (lambda t: t.bool().__setitem__(0, 1j), TypeError, ["__setitem__"]),
    (lambda t: t.long().masked_fill(t > 0, np.inf), RuntimeError, ["masked_fill"]),
    (lambda t: t.add_(1, alpha="a"), TypeError, ["add_", "alpha"]),
    (lambda t: t.clip(min=1j), TypeError, ["clip", "min"]),
    (lambda t: t.clip(max="a"), TypeError, ["clip", "max"]),
    (lambda t: t.long().leaky_relu(), RuntimeError, ["leaky_relu", ".float()"]),
    (lambda t: t.leaky_relu(negative_slope="a"), TypeError, ["leaky_relu", "negative_slope"]),
    (lambda t: t.var(correction=1.5), ValueError, ["var", "correction"]),
    (lambda t: t.register_hook("f"), TypeError, ["register_hook"]),
    (lambda t: t.register_hook(print), RuntimeError, ["register_hook"]),
    (lambda t: t.sum().backward(), RuntimeError, ["backward", "does not require grad"]),
])
def test_values_of_the_wrong_type_or_range(call, exc, words):
    _refused(exc, lambda: call(tg.ones(2, 3)), *words)


def test_int_of_a_non_finite_tensor_is_a_runtime_error():
    _refused(RuntimeError, lambda: int(tg.tensor(np.inf)), "int()", "inf")
    _refused(RuntimeError, lambda: int(tg.tensor(np.nan)), "int()", "nan")
    assert int(tg.tensor(2.7)) == 2


def test_what_pytorch_accepts_still_works():
    t = tg.tensor([[1, 0], [3, -2]])
    assert t.bool().min().item() is False and t.min().item() == -2   # min of bool / int
    np.testing.assert_array_equal(t.bool().sign().data, [[True, False], [True, True]])
    assert t.clip(min=0.5).dtype == np.float32                         # int + float bound
    np.testing.assert_array_equal(t.clip(min=tg.tensor([0, 1])).data, [[1, 1], [3, 1]])
    assert tg.tensor([1.0, 2.0]).broadcast_to(2).shape == (2,)
    assert tg.tensor([1.0, 2.0, 3.0]).var(correction=2.0).item() == 2.0  # a whole float is ok
    t.fill_(np.int64(7))
    assert (t == 7).all().item()


def test_python_numbers_that_overflow_the_dtype(warnings_are_errors):
    half = tg.tensor([1.0], dtype=np.float16)
    assert np.isinf((half.maximum(1e10)).data).all()                    # inf, silently
    assert np.isinf(half.masked_fill(half > 0, 1e10).data).all()
    _refused(RuntimeError, lambda: tg.tensor([1]) + 2 ** 70, "add", "overflow")
