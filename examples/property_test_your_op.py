"""Write your own op and test it the way every op in tinygrad_lite is tested.

The op: softplus, out = log(1 + exp(x)), written by hand as a ``Function`` (the package has its
own ``Tensor.softplus``; this one is called ``HandSoftplus`` so the two never mix). Its tests are
properties -- statements that hold for every input -- and hypothesis searches for a
counterexample among the shapes, broadcasting pairs and edge values that the strategies in
``tinygrad_lite.testing`` generate:

* math identities: softplus(x) - softplus(-x) = x;  max(x, 0) <= softplus(x) <= max(x, 0) + log 2;
* no overflow at huge |x| (1e300), exact at tiny |x| (1e-300), for float64 and float32;
* the gradient is sigmoid(x), inside [0, 1], on every edge value;
* gradcheck (exact, and fast mode on a large input) and gradgradcheck in float64, over shapes
  and broadcasting pairs;
* a deliberately wrong backward is caught, and the message names the input, the element and
  both values.

Run it as a script (it runs every property and prints what it checked; exit status 1 if one
fails) or with pytest:

    python examples/property_test_your_op.py
    pytest examples/property_test_your_op.py
"""

from __future__ import annotations

import math
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_lite import Tensor
from tinygrad_lite.autograd import Function
from tinygrad_lite.testing import (GradcheckError, broadcastable_shapes, edge_arrays,
                                   float_arrays, gradcheck, gradgradcheck, shapes)

# hypothesis' default deadline (200 ms per example) is about timing, which these properties are
# not: a slow example is not a wrong one
PROPERTY = settings(max_examples=40, deadline=None)


# --------------------------------------------------------------------------------------------
# the op under test
# --------------------------------------------------------------------------------------------

class HandSoftplus(Function):
    """out = log(1 + exp(x));  dx = g * sigmoid(x)"""

    def forward(self, x):
        # log(1 + exp(x)) computed as logaddexp(0, x): exp(800) would overflow to inf
        return np.logaddexp(x.dtype.type(0), x)

    def backward(self, g, out):
        (x,) = self.inputs
        return g * x.sigmoid()  # Tensor ops, so create_graph can differentiate it again


def hand_softplus(x: Tensor) -> Tensor:
    return HandSoftplus.apply(x)


class ForgotTheChainRule(HandSoftplus):
    """A classic slip: d/dx log(u) = u'/u, written as 1/u -- forgetting u' = exp(x).

    That gives dx = g / (1 + exp(x)) = g * sigmoid(-x), which agrees with the right
    answer only at x = 0."""

    def backward(self, g, out):
        (x,) = self.inputs
        return g * (-x).sigmoid()


def leaf(array) -> Tensor:
    return Tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def sigmoid(a: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0, -a))


# --------------------------------------------------------------------------------------------
# properties of the forward pass
# --------------------------------------------------------------------------------------------

@PROPERTY
@given(edge_arrays(shapes(max_dims=2)))
def test_softplus_identity_on_edge_values(a):
    """softplus(x) - softplus(-x) = x, from 1e-300 to 1e300 in magnitude."""
    difference = (hand_softplus(Tensor(a)) - hand_softplus(Tensor(-a))).numpy()
    np.testing.assert_allclose(difference, a, rtol=1e-15, atol=1e-15)


@PROPERTY
@given(st.sampled_from([np.float64, np.float32]).flatmap(
    lambda dtype: edge_arrays(shapes(max_dims=2), dtype)))
def test_softplus_is_finite_and_bounded_on_edge_values(a):
    """max(x, 0) <= softplus(x) <= max(x, 0) + log 2, with no overflow, in the input's dtype."""
    out = hand_softplus(Tensor(a)).numpy()
    assert out.dtype == a.dtype and np.all(np.isfinite(out))
    floor = np.maximum(a, 0)
    slack = np.finfo(a.dtype).eps * np.maximum(floor, 1)  # one rounding of the result
    assert np.all(out >= floor - slack)
    assert np.all(out - floor <= math.log(2) + slack)  # (floor + log 2 could overflow)


# --------------------------------------------------------------------------------------------
# properties of the backward pass
# --------------------------------------------------------------------------------------------

@PROPERTY
@given(edge_arrays(shapes(max_dims=2)))
def test_gradient_is_sigmoid_on_edge_values(a):
    """The engine's gradient is sigmoid(x) and lies in [0, 1], even at 1e300 and 1e-300."""
    x = leaf(a)
    hand_softplus(x).backward(np.ones_like(a))  # (.sum() would overflow at 1e300)
    assert np.all((x.grad.numpy() >= 0) & (x.grad.numpy() <= 1))
    np.testing.assert_allclose(x.grad.numpy(), sigmoid(a), rtol=1e-15, atol=0)


@PROPERTY
@given(float_arrays(shapes(), min_value=-6.0, max_value=6.0))
def test_gradcheck_over_shapes(a):
    """Against central finite differences, element by element (0-d and size-0 included)."""
    assert gradcheck(hand_softplus, [leaf(a)])


@PROPERTY
@given(broadcastable_shapes().flatmap(lambda pair: st.tuples(
    float_arrays(pair[0], min_value=-4.0, max_value=4.0),
    float_arrays(pair[1], min_value=-4.0, max_value=4.0))))
def test_gradcheck_inside_a_broadcasting_expression(arrays):
    """Composed with broadcasting ops, the gradients still reach both inputs correctly."""
    a, b = arrays
    assert gradcheck(lambda x, y: hand_softplus(x * y) + y, [leaf(a), leaf(b)])


@settings(max_examples=15, deadline=None)  # each example differentiates twice
@given(float_arrays(shapes(max_dims=2), min_value=-4.0, max_value=4.0))
def test_gradgradcheck_over_shapes(a):
    """The backward is written in Tensor ops, so it is itself differentiable (and right)."""
    assert gradgradcheck(hand_softplus, [leaf(a)])


def test_fast_gradcheck_on_a_large_input():
    """200 x 300 = 60,000 elements: exact mode would evaluate the op 120,002 times; fast mode
    checks 4 random projections v^T J u with 13 evaluations and 4 backward passes."""
    x = leaf(np.random.default_rng(0).uniform(-6, 6, (200, 300)))
    assert gradcheck(hand_softplus, [x], fast_mode=True)
    assert gradgradcheck(hand_softplus, [x], fast_mode=True)


# --------------------------------------------------------------------------------------------
# a wrong backward must fail
# --------------------------------------------------------------------------------------------

def wrong_backward_message() -> str:
    """gradcheck's message for ForgotTheChainRule at x = [0, 1, -2, 3]."""
    try:
        gradcheck(ForgotTheChainRule.apply, [leaf([0.0, 1.0, -2.0, 3.0])])
    except GradcheckError as e:
        return str(e)
    raise AssertionError("gradcheck passed a wrong backward")


def test_a_wrong_backward_is_caught_and_located():
    """The worst element is x = 3 (position 3): the wrong slope sigmoid(-3) = 0.047 against
    sigmoid(3) = 0.953, each times gradcheck's weight for that element."""
    message = wrong_backward_message()
    assert message.startswith("gradcheck failed: input 0 at position (3,): analytic gradient ")
    analytic = float(message.split("analytic gradient ")[1].split(",")[0])
    numeric = float(message.split("(central difference) ")[1].split(",")[0])
    np.testing.assert_allclose(analytic / numeric, sigmoid(-3.0) / sigmoid(3.0), rtol=1e-6)


def test_fast_mode_catches_the_wrong_backward_too():
    """Fast mode catches it on the large input too, naming the input and the direction."""
    x = leaf(np.random.default_rng(1).uniform(-6, 6, (200, 300)))
    try:
        gradcheck(ForgotTheChainRule.apply, [x], fast_mode=True)
    except GradcheckError as e:
        assert "input 0 along random direction" in str(e)
    else:
        raise AssertionError("fast mode passed a wrong backward")


# --------------------------------------------------------------------------------------------
# as a script: run every check above and print what it checked
# --------------------------------------------------------------------------------------------

CHECKS = [test_softplus_identity_on_edge_values, test_softplus_is_finite_and_bounded_on_edge_values,
          test_gradient_is_sigmoid_on_edge_values, test_gradcheck_over_shapes,
          test_gradcheck_inside_a_broadcasting_expression, test_gradgradcheck_over_shapes,
          test_fast_gradcheck_on_a_large_input, test_a_wrong_backward_is_caught_and_located,
          test_fast_mode_catches_the_wrong_backward_too]


def main() -> int:
    print(f"HandSoftplus: {HandSoftplus.__doc__}\n")
    failed = 0
    for check in CHECKS:
        summary = " ".join(check.__doc__.split("\n\n")[0].split())  # its first paragraph
        try:
            check()  # a @given check runs all its hypothesis examples here
        except Exception as e:  # report it and go on with the next check
            failed += 1
            print(f"FAIL {check.__name__}: {type(e).__name__}: {e}")
        else:
            print(f"ok   {check.__name__}: {summary}")
    print("\nthe deliberately wrong backward (dx = g * sigmoid(-x)), as gradcheck reports it:")
    print(f"  {wrong_backward_message()}")
    print(f"\n{len(CHECKS) - failed} of {len(CHECKS)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
