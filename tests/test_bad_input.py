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
