"""tinygrad_lite.testing itself: gradcheck's fast mode (random v^T J u projections) passes on
correct ops and catches wrong backwards -- including one wrong element -- in a number of passes
that does not grow with the input; both modes' messages name what disagrees; the edge-value
strategies produce what they promise."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings

import tinygrad_lite as tg
from tinygrad_lite import Tensor
from tinygrad_lite.autograd import Function
from tinygrad_lite.testing import (GradcheckError, edge_arrays, edge_floats, gradcheck,
                                   gradgradcheck)


def leaf(a) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def values_in(message: str) -> tuple:
    """The analytic and numeric values a GradcheckError message reports (either mode)."""
    match = re.search(r"analytic (?:gradient|v\^T J u) (\S+), numeric \(central "
                      r"difference[^,]*?\) (\S+), difference", message)
    assert match, message
    return float(match.group(1)), float(match.group(2))


def uniform(shape, seed=0, low=-1.0, high=1.0) -> Tensor:
    return leaf(np.random.default_rng(seed).uniform(low, high, shape))


class CountingSin(Function):
    """out = sin(x);  dx = g * cos(x)   (counts its forward and backward calls)"""
    forwards = 0
    backwards = 0

    def forward(self, x):
        CountingSin.forwards += 1
        return np.sin(x)

    def backward(self, g, out):
        CountingSin.backwards += 1
        return g * self.inputs[0].cos()


class SinWithOneWrongElement(Function):
    """out = sin(x);  dx = g * cos(x) -- except element 123 of dx, which is deliberately 0"""

    def forward(self, x):
        return np.sin(x)

    def backward(self, g, out):
        slope = np.cos(self.inputs[0].data)
        slope.reshape(-1)[123] = 0.0  # the one wrong element
        return g * Tensor(slope)


class SquareOffByTwo(Function):
    """out = x * x;  dx = g * x  (wrong: should be 2 * g * x)"""

    def forward(self, x):
        return x * x

    def backward(self, g, out):
        return g * self.inputs[0]


class MulWrongForY(Function):
    """out = x * y;  dx = g * y (right),  dy = g * y (wrong: should be g * x)"""

    def forward(self, x, y):
        return x * y

    def backward(self, g, out):
        x, y = self.inputs
        return g * y, g * y


class CubeOutsideTheGraph(Function):
    """out = x**3;  dx = g * 3x² -- computed from arrays, so not differentiable again"""

    def forward(self, x):
        return x ** 3

    def backward(self, g, out):
        return g * Tensor(3 * self.inputs[0].data ** 2)


# --------------------------------------------------------------------------------------------
# fast mode passes on correct ops
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn, shapes", [
    (lambda x: x.sin() * x, [(30, 40)]),
    (lambda a, b: a @ b, [(5, 7), (7, 3)]),
    (lambda a, b: (a * b).exp().sum(axis=0), [(4, 1, 3), (2, 3)]),  # broadcasting
    (lambda x: x.softmax(-1), [(6, 9)]),
    (lambda x: x.sum(), [(0, 3)]),  # a size-0 input
    (lambda x: x * 2.0, [()]),  # 0-d
])
def test_fast_mode_passes_on_correct_ops(fn, shapes):
    inputs = [uniform(s, seed=k) for k, s in enumerate(shapes)]
    assert gradcheck(fn, inputs, fast_mode=True)
    assert gradcheck(fn, inputs, fast_mode=True, num_directions=1, seed=7)


def test_fast_gradgradcheck_passes_on_smooth_ops():
    assert gradgradcheck(lambda x, w: (x @ w).tanh(), [uniform((3, 4)), uniform((4, 2), 1)],
                         fast_mode=True)


def test_fast_mode_passes_non_grad_inputs_through():
    x, c = uniform((3,)), Tensor(np.array([1.0, 2.0, 3.0]))
    assert gradcheck(lambda x, c: x * c, [x, c], fast_mode=True)


# --------------------------------------------------------------------------------------------
# fast mode catches wrong backwards, and says where
# --------------------------------------------------------------------------------------------

def test_fast_mode_catches_a_wrong_gradient_and_names_input_direction_and_values():
    with pytest.raises(GradcheckError) as caught:
        gradcheck(lambda x: SquareOffByTwo.apply(x), [uniform((50,))], fast_mode=True)
    message = str(caught.value)
    assert message.startswith("gradcheck (fast mode) failed: input 0 along random direction ")
    assert "analytic v^T J u" in message and "numeric (central difference" in message
    assert "fast_mode=False" in message  # says how to find the element
    assert not gradcheck(lambda x: SquareOffByTwo.apply(x), [uniform((50,))], fast_mode=True,
                         raise_exception=False)


def test_fast_mode_names_the_input_whose_gradient_is_wrong():
    with pytest.raises(GradcheckError, match=r"input 1 along random direction"):
        gradcheck(lambda x, y: MulWrongForY.apply(x, y), [uniform((4, 5)), uniform((4, 5), 1)],
                  fast_mode=True)


def test_fast_mode_reports_values_that_really_disagree():
    """The two numbers in the message are v^T J u from the wrong and from the right gradient:
    for x*x with dx = x instead of 2x, the analytic one is half the numeric one."""
    with pytest.raises(GradcheckError) as caught:
        gradcheck(lambda x: SquareOffByTwo.apply(x), [uniform((20,), low=0.5, high=1.5)],
                  fast_mode=True)
    analytic, numeric = values_in(str(caught.value))
    assert analytic == pytest.approx(numeric / 2, rel=1e-6)


def test_fast_mode_catches_one_wrong_element_among_a_thousand():
    """Only element 123 of a 1000-element gradient is wrong (0 instead of cos(x_123)).

    One random direction misses it when error * u_123 happens to fall inside the tolerance
    rtol * |v^T J u| ~ rtol * sqrt(1000): measured here, about 7% of seeds for one direction
    (at most 15% asserted). The directions are independent, so with the default 4 directions a
    miss has probability about 0.07**4 ~ 2e-5: every one of 100 seeds catches it."""
    x = uniform((1000,), seed=1)

    def wrong(t):
        return SinWithOneWrongElement.apply(t)

    one_direction_misses = sum(gradcheck(wrong, [x], fast_mode=True, num_directions=1, seed=s,
                                         raise_exception=False) for s in range(200))
    assert 0 < one_direction_misses <= 30  # it can miss with one direction ...
    for s in range(100):  # ... but not with four
        assert not gradcheck(wrong, [x], fast_mode=True, seed=s, raise_exception=False), s
    with pytest.raises(GradcheckError, match=r"input 0 at position \(123,\)"):
        gradcheck(wrong, [x])  # exact mode names the element


def test_fast_gradgradcheck_catches_a_backward_outside_the_graph():
    x = uniform((40,), low=0.5, high=1.5)
    assert gradcheck(lambda t: CubeOutsideTheGraph.apply(t), [x], fast_mode=True)
    with pytest.raises(GradcheckError, match=r"fast mode.*input 0 along random direction"):
        gradgradcheck(lambda t: CubeOutsideTheGraph.apply(t), [x], fast_mode=True)


def test_exact_mode_message_names_input_element_and_both_values():
    x = leaf([1.0, 2.0, -3.0])
    with pytest.raises(GradcheckError) as caught:
        gradcheck(lambda t: SquareOffByTwo.apply(t), [x])
    message = str(caught.value)
    # the worst element is x = -3: analytic dx = -3 * w, numeric 2 * -3 * w
    assert message.startswith("gradcheck failed: input 0 at position (2,): analytic gradient ")
    analytic, numeric = values_in(message)
    assert numeric == pytest.approx(2 * analytic, rel=1e-6) and analytic < 0


# --------------------------------------------------------------------------------------------
# cost: passes counted, not timed
# --------------------------------------------------------------------------------------------

def count_passes(check, x, **options):
    CountingSin.forwards = CountingSin.backwards = 0
    assert check(lambda t: CountingSin.apply(t) * t, [x], **options)
    return CountingSin.forwards, CountingSin.backwards


def test_fast_mode_cost_does_not_grow_with_the_input():
    """Exact mode evaluates fn twice per element (2n + 2 forwards); fast mode three times per
    direction plus one, whatever n. gradgradcheck's finite differences each run a backward
    pass, so there exact mode needs ~2n backwards and fast mode a few per direction."""
    small, large = uniform((10,)), uniform((40, 50))
    assert count_passes(gradcheck, small) == (2 * 10 + 2, 1)
    assert count_passes(gradcheck, large) == (2 * 2000 + 2, 1)
    assert count_passes(gradcheck, small, fast_mode=True) == (1 + 3 * 4, 4)
    assert count_passes(gradcheck, large, fast_mode=True) == (1 + 3 * 4, 4)
    assert count_passes(gradcheck, large, fast_mode=True, num_directions=2) == (1 + 3 * 2, 2)

    assert count_passes(gradgradcheck, large) == (2 * 2000 + 3, 2 * 2000 + 3)
    # per direction: three forwards and backwards of fn, plus the backward pass that gives
    # v^T J (which here goes through sin again, as d(x sin x)/dx = sin x + x cos x does)
    assert count_passes(gradgradcheck, large, fast_mode=True) == (2 + 3 * 4, 1 + 4 * 4)
    assert count_passes(gradgradcheck, small, fast_mode=True) == (2 + 3 * 4, 1 + 4 * 4)


@pytest.mark.parametrize("check", [gradcheck, gradgradcheck])
@pytest.mark.parametrize("options, error, words", [
    (dict(fast_mode=True, num_directions=0), ValueError, "num_directions must be a positive int"),
    (dict(fast_mode=True, num_directions=2.5), ValueError, "got 2.5"),
    (dict(fast_mode=True, num_directions=True), ValueError, "got True"),
    (dict(fast_mode="yes"), TypeError, "fast_mode must be True or False, got 'yes'"),
])
def test_bad_fast_mode_arguments_are_refused_by_name(check, options, error, words):
    with pytest.raises(error, match=check.__name__ + ": ") as caught:
        check(lambda t: t * t, [uniform((3,))], **options)
    assert words in str(caught.value)


# --------------------------------------------------------------------------------------------
# edge-value strategies
# --------------------------------------------------------------------------------------------

@settings(max_examples=300)
@given(edge_floats())
def test_edge_floats_are_finite_float64(x):
    assert isinstance(x, float) and np.isfinite(x)


def test_edge_floats_cover_tiny_and_huge_magnitudes_and_both_signs():
    seen = []

    @settings(max_examples=300, database=None)
    @given(edge_floats())
    def collect(x):
        seen.append(x)

    collect()
    magnitudes = np.abs(seen)
    assert (magnitudes < 1e-100).sum() > 10 and (magnitudes > 1e100).sum() > 10
    assert min(seen) < 0 < max(seen) and 0.0 in seen


@settings(max_examples=100)
@given(edge_arrays((4,), np.float32, max_magnitude=30.0))
def test_edge_arrays_respect_dtype_and_max_magnitude(a):
    assert a.dtype == np.float32 and a.shape == (4,)
    assert np.all(np.abs(a) <= 30.0) and np.all(np.isfinite(a))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_edge_floats_refuse_a_bad_max_magnitude(bad):
    with pytest.raises(ValueError, match=r"edge_floats: max_magnitude must be a positive"):
        edge_floats(max_magnitude=bad)


def test_package_exposes_testing_lazily():
    assert tg.testing.gradcheck is gradcheck
