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
