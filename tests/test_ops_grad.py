"""Every op: forward values against NumPy, gradients against central finite differences.

Shapes come from the hypothesis strategies in ``tinygrad_lite.testing`` (so those are exercised
too): 0-d tensors, size-1 and size-0 dimensions, and broadcasting pairs. ``gradcheck`` compares
the engine's backward with central differences in float64; ``gradgradcheck`` does the same for
the backward of the backward (``create_graph=True``) on the smooth ops.

Ops with kinks (abs, relu, clip, maximum, max, ...) are checked at points away from the kink,
where the derivative exists: values are moved off the kink (``away``) or made distinct
(``distinct``, for ties) while keeping the shape and ordering hypothesis generated. The ops that
call the compiled kernels (matmul, linear, softmax, log_softmax, cross_entropy) run under both
backends through the ``backend`` fixture.
"""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_lite as tg
import tinygrad_lite.nn.functional as F
from tinygrad_lite import Tensor
from tinygrad_lite.testing import (GradcheckError, broadcastable_shapes, float_arrays,
                                   gradcheck, gradgradcheck, shapes, tensors)

FEW = settings(max_examples=15)  # for the costlier gradgradcheck properties


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def distinct(a: np.ndarray, step: float = 0.25, offset: float = 0.0) -> np.ndarray:
    """Distinct values with the same shape and the same order as ``a`` (no ties for max/min)."""
    flat = a.reshape(-1)
    ranks = np.argsort(np.argsort(flat, kind="stable"), kind="stable")
    return ((ranks - flat.size // 2) * step + offset).reshape(a.shape).astype(a.dtype)


def away(a: np.ndarray, points, margin: float = 0.05) -> np.ndarray:
    """Move values within ``margin`` of a kink at ``points`` to 2*margin from it."""
    a = a.copy()
    for p in points:
        near = np.abs(a - p) < margin
        a[near] = np.where(a[near] >= p, p + 2 * margin, p - 2 * margin)
    return a


def leaf(a) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def close(actual, expected, rtol=1e-10, atol=1e-12):
    actual = actual.numpy() if isinstance(actual, Tensor) else actual
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)
    assert np.shape(actual) == np.shape(expected)


@st.composite
def axes_for(draw, ndim: int, allow_none: bool = True, allow_empty: bool = False):
    """An axis argument for a reduction over ``ndim`` dims: None, an int (maybe negative) or a
    tuple of distinct axes."""
    options = [st.none()] if allow_none else []
    if ndim > 0:
        options.append(st.integers(-ndim, ndim - 1))
        options.append(st.lists(st.integers(0, ndim - 1), min_size=0 if allow_empty else 1,
                                max_size=ndim, unique=True).map(tuple))
    if not options:
        return None
    return draw(st.one_of(*options))


def np_erf(a):
    return np.vectorize(math.erf, otypes=[np.float64])(a)


# --------------------------------------------------------------------------------------------
# the strategies themselves
# --------------------------------------------------------------------------------------------

@given(st.data())
def test_strategies_generate_what_they_promise(data):
    shape = data.draw(shapes())
    assert len(shape) <= 3 and all(0 <= n <= 4 for n in shape)
    s1, s2 = data.draw(broadcastable_shapes())
    np.broadcast_shapes(s1, s2)  # raises if they do not broadcast
    a = data.draw(float_arrays(shape, min_value=-2.0, max_value=2.0))
    assert a.dtype == np.float64 and a.shape == shape and np.all(np.abs(a) <= 2.0)
    t = data.draw(tensors(shape))
    assert isinstance(t, Tensor) and t.requires_grad and t.shape == shape
    t32 = data.draw(tensors(shape, dtype=np.float32, requires_grad=False))
    assert t32.dtype == np.float32 and not t32.requires_grad


def test_gradcheck_catches_a_wrong_gradient():
    """gradcheck must be able to fail: an op whose backward is off by a factor of 2."""
    from tinygrad_lite.autograd import Function

    class BadSquare(Function):
        def forward(self, x):
            return x * x

        def backward(self, g, out):
            return g * self.inputs[0]  # should be 2 * x

    with pytest.raises(GradcheckError, match=r"input 0 at position"):
        gradcheck(lambda x: BadSquare.apply(x), [leaf([1.0, 2.0])])
    assert not gradcheck(lambda x: BadSquare.apply(x), [leaf([1.0, 2.0])],
                         raise_exception=False)


def test_gradgradcheck_catches_a_wrong_second_derivative():
    """A backward computed outside the graph (constant) has the wrong second derivative."""
    from tinygrad_lite.autograd import Function

    class Cube(Function):
        def forward(self, x):
            return x ** 3

        def backward(self, g, out):
            return g * Tensor(3 * self.inputs[0].data ** 2)  # right value, but not recorded

    gradcheck(lambda x: Cube.apply(x), [leaf([0.5, 1.5])])
    with pytest.raises(GradcheckError):
        gradgradcheck(lambda x: Cube.apply(x), [leaf([0.5, 1.5])])


# --------------------------------------------------------------------------------------------
# unary elementwise ops
# --------------------------------------------------------------------------------------------

def _gelu_tanh_np(a):
    return 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))


# name: (engine fn, NumPy reference, value range, kinks to avoid, gradgradcheck it?)
UNARY = {
    "neg": (lambda x: -x, np.negative, (-3, 3), (), True),
    "exp": (lambda x: x.exp(), np.exp, (-3, 3), (), True),
    "log": (lambda x: x.log(), np.log, (0.2, 3), (), True),
    "sqrt": (lambda x: x.sqrt(), np.sqrt, (0.2, 3), (), True),
    "sin": (lambda x: x.sin(), np.sin, (-3, 3), (), True),
    "cos": (lambda x: x.cos(), np.cos, (-3, 3), (), True),
    "tanh": (lambda x: x.tanh(), np.tanh, (-3, 3), (), True),
    "sigmoid": (lambda x: x.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), (-3, 3), (), True),
    "gelu": (lambda x: x.gelu(), lambda a: 0.5 * a * (1 + np_erf(a / math.sqrt(2))), (-3, 3),
             (), True),
    "gelu_tanh": (lambda x: x.gelu(approximate="tanh"), _gelu_tanh_np, (-3, 3), (), True),
    "F.gelu": (lambda x: F.gelu(x, "tanh"), _gelu_tanh_np, (-3, 3), (), True),
    "relu": (lambda x: x.relu(), lambda a: np.maximum(a, 0), (-3, 3), (0.0,), False),
    "F.relu": (F.relu, lambda a: np.maximum(a, 0), (-3, 3), (0.0,), False),
    "leaky_relu": (lambda x: x.leaky_relu(0.1), lambda a: np.where(a > 0, a, 0.1 * a), (-3, 3),
                   (0.0,), False),
    "F.leaky_relu": (lambda x: F.leaky_relu(x), lambda a: np.where(a > 0, a, 0.01 * a),
                     (-3, 3), (0.0,), False),
    "abs": (lambda x: x.abs(), np.abs, (-3, 3), (0.0,), False),
    "clip": (lambda x: x.clip(-1.0, 1.0), lambda a: np.clip(a, -1, 1), (-3, 3), (-1.0, 1.0),
             False),
    "clip_min": (lambda x: x.clip(min=0.5), lambda a: np.maximum(a, 0.5), (-3, 3), (0.5,),
                 False),
    "clamp_max": (lambda x: x.clamp(max=-0.5), lambda a: np.minimum(a, -0.5), (-3, 3), (-0.5,),
                  False),
    # Python-scalar fast paths and reflected forms
    "x+2.0": (lambda x: x + 2.0, lambda a: a + 2.0, (-3, 3), (), True),
    "2.0+x": (lambda x: 2.0 + x, lambda a: 2.0 + a, (-3, 3), (), True),
    "x-3": (lambda x: x - 3, lambda a: a - 3, (-3, 3), (), True),
    "2.5-x": (lambda x: 2.5 - x, lambda a: 2.5 - a, (-3, 3), (), True),
    "x*3": (lambda x: x * 3, lambda a: a * 3, (-3, 3), (), True),
    "-1.5*x": (lambda x: -1.5 * x, lambda a: -1.5 * a, (-3, 3), (), True),
    "x/4": (lambda x: x / 4, lambda a: a / 4, (-3, 3), (), True),
    "2/x": (lambda x: 2 / x, lambda a: 2 / a, (0.3, 3), (), True),
    "x**2": (lambda x: x ** 2, lambda a: a ** 2, (-3, 3), (), True),
    "x**3": (lambda x: x ** 3, lambda a: a ** 3, (-3, 3), (), True),
    "x**0.5": (lambda x: x ** 0.5, np.sqrt, (0.2, 3), (), True),
    "x**-1.5": (lambda x: x ** -1.5, lambda a: a ** -1.5, (0.3, 3), (), True),
    "2.0**x": (lambda x: 2.0 ** x, lambda a: 2.0 ** a, (-3, 3), (), True),
    "x.pow(2)": (lambda x: x.pow(2), lambda a: a ** 2, (-3, 3), (), True),
    "clone": (lambda x: x.clone(), lambda a: a.copy(), (-3, 3), (), True),
    # the small activations a PyTorch user expects; the kinked ones are checked (to second
    # order too) away from their kinks, where the hand-written NumPy formula is the truth
    "sign": (lambda x: x.sign(), np.sign, (-3, 3), (0.0,), True),
    "softplus": (lambda x: x.softplus(), lambda a: np.log1p(np.exp(a)), (-3, 3), (), True),
    "softplus_beta2_threshold4": (
        lambda x: F.softplus(x, beta=2.0, threshold=4.0),
        lambda a: np.where(2 * a > 4, a, np.log1p(np.exp(2 * a)) / 2), (-3, 3), (2.0,), True),
    "relu6": (lambda x: x.relu6(), lambda a: np.minimum(np.maximum(a, 0), 6), (-2, 8),
              (0.0, 6.0), True),
    "F.relu6": (F.relu6, lambda a: np.minimum(np.maximum(a, 0), 6), (-2, 8), (0.0, 6.0), True),
    "hardswish": (lambda x: x.hardswish(), lambda a: a * np.minimum(np.maximum(a + 3, 0), 6) / 6,
                  (-5, 5), (-3.0, 3.0), True),
    "F.hardswish": (F.hardswish, lambda a: a * np.minimum(np.maximum(a + 3, 0), 6) / 6, (-5, 5),
                    (-3.0, 3.0), True),
    "silu": (lambda x: x.silu(), lambda a: a / (1 + np.exp(-a)), (-4, 4), (), True),
    "F.silu": (F.silu, lambda a: a / (1 + np.exp(-a)), (-4, 4), (), True),
    "mish": (lambda x: x.mish(), lambda a: a * np.tanh(np.log1p(np.exp(a))), (-4, 4), (), True),
    "F.mish": (F.mish, lambda a: a * np.tanh(np.log1p(np.exp(a))), (-4, 4), (), True),
}
SMOOTH = [name for name, spec in UNARY.items() if spec[4]]


def _unary_input(data, name, shape_strategy):
    fn, ref, (lo, hi), kinks, smooth = UNARY[name]
    a = data.draw(float_arrays(shape_strategy, min_value=lo, max_value=hi))
    return fn, ref, away(a, kinks) if kinks else a


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary_forward_and_gradcheck(name, data):
    fn, ref, a = _unary_input(data, name, shapes())
    with np.errstate(all="ignore"):
        expected = ref(a)
    x = leaf(a)
    close(fn(x), expected)
    gradcheck(fn, [x])


@pytest.mark.parametrize("name", SMOOTH)
@FEW
@given(data=st.data())
def test_unary_gradgradcheck(name, data):
    fn, _, a = _unary_input(data, name, shapes(max_dims=2, max_side=3))
    gradgradcheck(fn, [leaf(a)])


@pytest.mark.parametrize("name", ["exp", "log", "sigmoid", "tanh", "gelu", "x**2", "2/x",
                                  "x*3", "relu", "abs", "sign", "softplus", "relu6", "hardswish",
                                  "silu", "mish"])
def test_unary_float32_stays_float32(name):
    fn, ref, (lo, hi), kinks, _ = UNARY[name]
    a = away(np.linspace(lo, hi, 7), kinks).astype(np.float32)
    out = fn(Tensor(a))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), ref(a.astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_kink_gradients_follow_the_documented_convention():
    x = leaf([-1.0, 0.0, 2.0])
    x.relu().sum().backward()
    close(x.grad, [0.0, 0.0, 1.0])
    x.grad = None
    x.abs().sum().backward()
    close(x.grad, [-1.0, 0.0, 1.0])  # sign(0) = 0, as in PyTorch
    x.grad = None
    x.clip(0.0, 1.0).sum().backward()  # the boundary itself counts as inside
    close(x.grad, [0.0, 1.0, 0.0])


def test_sigmoid_is_stable_for_large_inputs():
    x = Tensor(np.array([-1000.0, 0.0, 1000.0]), requires_grad=True)
    y = x.sigmoid()
    close(y, [0.0, 0.5, 1.0])
    y.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))


# --------------------------------------------------------------------------------------------
# binary ops with broadcasting
# --------------------------------------------------------------------------------------------

BINARY = {
    "add": (lambda x, y: x + y, np.add),
    "sub": (lambda x, y: x - y, np.subtract),
    "mul": (lambda x, y: x * y, np.multiply),
    "div": (lambda x, y: x / y, np.divide),
    "pow": (lambda x, y: x ** y, np.power),
    "method_add": (lambda x, y: x.add(y), np.add),
    "method_div": (lambda x, y: x.div(y), np.divide),
    "maximum": (lambda x, y: x.maximum(y), np.maximum),
    "minimum": (lambda x, y: x.minimum(y), np.minimum),
}


def _binary_inputs(data, name, shape_pairs):
    sx, sy = data.draw(shape_pairs)
    if name in ("maximum", "minimum"):  # interleaved distinct values: never a tie
        a = distinct(data.draw(float_arrays(sx)), 0.2)
        b = distinct(data.draw(float_arrays(sy)), 0.2, offset=0.1)
    elif name == "pow":  # positive base, any exponent
        a = data.draw(float_arrays(sx, min_value=0.5, max_value=2.0))
        b = data.draw(float_arrays(sy, min_value=-2.0, max_value=2.0))
    elif name in ("div", "method_div"):
        a = data.draw(float_arrays(sx))
        b = data.draw(float_arrays(sy, min_value=0.5, max_value=3.0))
        b = b * np.where(data.draw(hnp.arrays(bool, sy)), -1.0, 1.0)
    else:
        a, b = data.draw(float_arrays(sx)), data.draw(float_arrays(sy))
    return a, b


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_binary_broadcast_forward_and_gradcheck(name, data):
    fn, ref = BINARY[name]
    a, b = _binary_inputs(data, name, broadcastable_shapes())
    x, y = leaf(a), leaf(b)
    out = fn(x, y)
    close(out, ref(a, b))
    gradcheck(fn, [x, y])
    # the gradients have the inputs' shapes (unbroadcast), not the broadcast shape
    out.sum().backward()
    assert x.grad.shape == a.shape and y.grad.shape == b.shape


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow"])
@FEW
@given(data=st.data())
def test_binary_gradgradcheck(name, data):
    fn, _ = BINARY[name]
    a, b = _binary_inputs(data, name, broadcastable_shapes(max_dims=2, max_side=3))
    gradgradcheck(fn, [leaf(a), leaf(b)])


@pytest.mark.parametrize("expr", ["arr+x", "arr-x", "arr*x", "arr/x", "arr**x", "x-arr",
                                  "x/arr", "x**arr"])
@given(data=st.data())
def test_reflected_ops_with_numpy_arrays(expr, data):
    """ndarray OP Tensor dispatches to the Tensor's reflected method (__array_priority__)."""
    sx, sa = data.draw(broadcastable_shapes())
    x_np = data.draw(float_arrays(sx, min_value=0.5, max_value=2.0))
    arr = data.draw(float_arrays(sa, min_value=0.5, max_value=2.0))
    fn = {
        "arr+x": lambda x: arr + x, "arr-x": lambda x: arr - x, "arr*x": lambda x: arr * x,
        "arr/x": lambda x: arr / x, "arr**x": lambda x: arr ** x, "x-arr": lambda x: x - arr,
        "x/arr": lambda x: x / arr, "x**arr": lambda x: x ** arr,
    }[expr]
    x = leaf(x_np)
    out = fn(x)
    assert isinstance(out, Tensor)
    close(out, fn(x_np))
    gradcheck(fn, [x])


def test_pow_gradient_with_respect_to_exponent_only():
    base = Tensor(np.array([0.5, 2.0, 3.0]))
    e = leaf([1.0, -1.0, 2.0])
    (base ** e).sum().backward()
    close(e.grad, np.array([0.5, 2.0, 3.0]) ** e.numpy() * np.log([0.5, 2.0, 3.0]))
    assert base.grad is None


def test_pow_at_zero_base_has_the_limit_gradients():
    """d(x**0)/dx = 0 and d(0**y)/dy = 0 for y >= 0 (as in PyTorch), not 0 * inf = NaN."""
    x, y = leaf([0.0, 0.0, 0.0, 1.5]), leaf([0.0, 2.0, 3.0, 2.0])
    with np.errstate(all="ignore"):
        (x ** y).sum().backward()
        assert np.isfinite(x.grad.numpy()).all() and np.isfinite(y.grad.numpy()).all()
        close(x.grad, [0.0, 0.0, 0.0, 3.0])
        close(y.grad, [0.0, 0.0, 0.0, 1.5 ** 2 * math.log(1.5)])
        exponents, bases = Tensor(np.array([0.0, 2.0, 3.0])), Tensor(np.array([0.0, 1.5]))
        gradcheck(lambda x: x ** exponents, [leaf([0.0, 0.0, 0.0])])
        gradcheck(lambda y: bases ** y, [leaf([2.0, 2.0])])
        gradcheck(lambda x: x ** 0, [leaf([0.0, 1.0])])
        z = leaf([0.0, 1.0])
        (z ** 0).sum().backward()
        close(z.grad, [0.0, 0.0])


def test_maximum_tie_splits_gradient():
    x, y = leaf([1.0, 2.0]), leaf([1.0, 3.0])
    x.maximum(y).sum().backward()
    close(x.grad, [0.5, 0.0])
    close(y.grad, [0.5, 1.0])


@given(data=st.data())
def test_where_forward_and_gradcheck(data):
    sc, sx, sy = data.draw(broadcastable_shapes(num_shapes=3))
    cond = data.draw(hnp.arrays(bool, sc))
    a, b = data.draw(float_arrays(sx)), data.draw(float_arrays(sy))
    x, y = leaf(a), leaf(b)
    close(tg.where(Tensor(cond), x, y), np.where(cond, a, b))
    gradcheck(lambda x, y: tg.where(Tensor(cond), x, y), [x, y])
    gradgradcheck(lambda x, y: tg.where(Tensor(cond), x * x, y.sin()), [x, y])


def test_where_with_python_scalars():
    x = leaf([1.0, -2.0, 3.0])
    out = tg.where(x > 0, x, 0.0)
    close(out, [1.0, 0.0, 3.0])
    out.sum().backward()
    close(x.grad, [1.0, 0.0, 1.0])


@st.composite
def shape_and_mask_shape(draw):
    """A shape and a mask shape that broadcasts *to* it (dims set to 1, leading dims dropped)."""
    shape = draw(shapes())
    mask = [1 if draw(st.booleans()) else n for n in shape]
    drop = draw(st.integers(0, len(shape)))
    return shape, tuple(mask[drop:])


@given(data=st.data())
def test_masked_fill_forward_and_gradcheck(data):
    shape, mshape = data.draw(shape_and_mask_shape())
    a = data.draw(float_arrays(shape))
    mask = data.draw(hnp.arrays(bool, mshape))
    x = leaf(a)
    close(x.masked_fill(Tensor(mask), -7.0), np.where(mask, -7.0, a))
    gradcheck(lambda x: x.masked_fill(Tensor(mask), -7.0), [x])


COMPARISONS = {
    "==": (lambda x, y: x == y, np.equal), "!=": (lambda x, y: x != y, np.not_equal),
    "<": (lambda x, y: x < y, np.less), "<=": (lambda x, y: x <= y, np.less_equal),
    ">": (lambda x, y: x > y, np.greater), ">=": (lambda x, y: x >= y, np.greater_equal),
}


@pytest.mark.parametrize("op", list(COMPARISONS))
@given(data=st.data())
def test_comparisons_give_bool_without_grad(op, data):
    fn, ref = COMPARISONS[op]
    sx, sy = data.draw(broadcastable_shapes())
    # small integers as floats, so that equality actually happens
    a = data.draw(hnp.arrays(np.float64, sx, elements=st.integers(-2, 2).map(float)))
    b = data.draw(hnp.arrays(np.float64, sy, elements=st.integers(-2, 2).map(float)))
    out = fn(leaf(a), leaf(b))
    assert out.dtype == np.bool_
    assert not out.requires_grad and out.is_leaf
    np.testing.assert_array_equal(out.numpy(), ref(a, b))
    out_scalar = fn(leaf(a), 0.0)
    np.testing.assert_array_equal(out_scalar.numpy(), ref(a, 0.0))


def test_logical_ops_on_bool_tensors():
    p, q = Tensor(np.array([True, True, False])), Tensor(np.array([True, False, False]))
    np.testing.assert_array_equal((p & q).numpy(), [True, False, False])
    np.testing.assert_array_equal((p | q).numpy(), [True, True, False])
    np.testing.assert_array_equal((~p).numpy(), [False, False, True])
    assert bool(p.any()) and not bool(p.all())


# --------------------------------------------------------------------------------------------
# reductions
# --------------------------------------------------------------------------------------------

def _np_logsumexp(a, axis=None, keepdims=False):
    m = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    if keepdims:
        return out
    return np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


# name: (engine fn, NumPy reference, shape strategy, needs distinct values)
REDUCTIONS = {
    "sum": (lambda x, ax, kd: x.sum(axis=ax, keepdims=kd),  # NumPy's names: axis=() too
            lambda a, ax, kd: np.sum(a, ax, keepdims=kd),
            shapes(), False),
    "mean": (lambda x, ax, kd: x.mean(ax, kd), lambda a, ax, kd: np.mean(a, ax, keepdims=kd),
             shapes(min_side=1), False),
    "amax": (lambda x, ax, kd: x.amax(ax, kd), lambda a, ax, kd: np.max(a, ax, keepdims=kd),
             shapes(min_side=1), True),
    "amin": (lambda x, ax, kd: x.amin(ax, kd), lambda a, ax, kd: np.min(a, ax, keepdims=kd),
             shapes(min_side=1), True),
    "var": (lambda x, ax, kd: x.var(ax, keepdim=kd),
            lambda a, ax, kd: np.var(a, ax, keepdims=kd, ddof=1), shapes(1, 3, 2, 4), False),
    "var_biased": (lambda x, ax, kd: x.var(ax, keepdim=kd, correction=0),
                   lambda a, ax, kd: np.var(a, ax, keepdims=kd), shapes(min_side=1), False),
    "var_unbiased_false": (lambda x, ax, kd: x.var(ax, False, kd),
                           lambda a, ax, kd: np.var(a, ax, keepdims=kd), shapes(min_side=1),
                           False),
    "std": (lambda x, ax, kd: x.std(ax, keepdim=kd),
            lambda a, ax, kd: np.std(a, ax, keepdims=kd, ddof=1), shapes(1, 3, 2, 4), True),
    "logsumexp": (lambda x, ax, kd: x.logsumexp(ax, kd), _np_logsumexp, shapes(min_side=1),
                  False),
}


def _reduction_case(data, name, shape_strategy=None):
    fn, ref, shape_st, needs_distinct = REDUCTIONS[name]
    shape = data.draw(shape_st if shape_strategy is None else shape_strategy)
    a = data.draw(float_arrays(shape))
    if needs_distinct:
        a = distinct(a)
    axis = data.draw(axes_for(len(shape), allow_empty=name == "sum"))
    keepdims = data.draw(st.booleans())
    return fn, ref, a, axis, keepdims


@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(data=st.data())
def test_reduction_forward_and_gradcheck(name, data):
    fn, ref, a, axis, keepdims = _reduction_case(data, name)
    x = leaf(a)
    close(fn(x, axis, keepdims), ref(a, axis, keepdims))
    gradcheck(lambda x: fn(x, axis, keepdims), [x])


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "logsumexp"])
@FEW
@given(data=st.data())
def test_reduction_gradgradcheck(name, data):
    fn, _, a, axis, keepdims = _reduction_case(data, name, shapes(1, 2, 2, 3))
    gradgradcheck(lambda x: fn(x, axis, keepdims), [leaf(a)])


def test_reductions_of_size_zero():
    x = leaf(np.zeros((0, 3)))
    close(x.sum(), 0.0)
    close(x.sum(0), np.zeros(3))
    x.sum().backward()
    assert x.grad.shape == (0, 3)
    with np.errstate(all="ignore"):
        assert np.isnan(x.mean().item())


def test_amax_ties_share_the_gradient():
    x = leaf([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    x.amax(1).sum().backward()
    close(x.grad, [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    x.grad = None
    x.max(dim=1).values.sum().backward()  # max(dim): all of it to the index returned, as torch
    close(x.grad, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


@pytest.mark.parametrize("name", ["max", "min"])
@given(data=st.data())
def test_max_min_along_dim_values_indices_and_gradcheck(name, data):
    shape = data.draw(shapes(min_dims=1, min_side=1))
    a = distinct(data.draw(float_arrays(shape)))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    keepdim = data.draw(st.booleans())
    x = leaf(a)
    values, indices = getattr(x, name)(dim, keepdim)
    close(values, getattr(np, name)(a, axis=dim, keepdims=keepdim))
    np.testing.assert_array_equal(indices.numpy(),
                                  getattr(np, "arg" + name)(a, axis=dim, keepdims=keepdim))
    assert indices.dtype == np.int64
    gradcheck(lambda x: getattr(x, name)(dim, keepdim).values, [x])
    gradgradcheck(lambda x: getattr(x, name)(dim, keepdim).values * x.sum(), [x])


@given(data=st.data())
def test_topk_values_indices_and_gradcheck(data):
    shape = data.draw(shapes(min_dims=1, min_side=1))
    a = distinct(data.draw(float_arrays(shape)))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    k = data.draw(st.integers(0, shape[dim]))
    largest = data.draw(st.booleans())
    x = leaf(a)
    values, indices = x.topk(k, dim, largest)
    order = np.argsort(-a if largest else a, axis=dim)
    expected_indices = np.take(order, np.arange(k), axis=dim)
    np.testing.assert_array_equal(indices.numpy(), expected_indices)
    close(values, np.take_along_axis(a, expected_indices, axis=dim))
    gradcheck(lambda x: x.topk(k, dim, largest).values, [x])
    gradgradcheck(lambda x: x.topk(k, dim, largest).values ** 2, [x])


@pytest.mark.parametrize("upper", [False, True])
@given(data=st.data())
def test_tril_triu_forward_gradcheck_gradgradcheck(upper, data):
    shape = data.draw(shapes(min_dims=2))
    diagonal = data.draw(st.integers(-3, 3))
    a = data.draw(float_arrays(shape))
    fn = (lambda x: tg.triu(x, diagonal)) if upper else (lambda x: tg.tril(x, diagonal))
    close(fn(leaf(a)), (np.triu if upper else np.tril)(a, diagonal))
    gradcheck(fn, [leaf(a)])
    gradgradcheck(lambda x: fn(x * x), [leaf(a)])


def test_logsumexp_is_stable():
    x = leaf([1000.0, 1000.0])
    close(x.logsumexp(), 1000.0 + math.log(2))
    x.logsumexp().backward()
    close(x.grad, [0.5, 0.5])
    y = Tensor(np.array([-np.inf, -np.inf]))
    with np.errstate(divide="ignore"):
        assert y.logsumexp().item() == -np.inf  # log(0), not NaN


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(data=st.data())
def test_argmax_argmin_match_numpy(name, data):
    shape = data.draw(shapes(min_side=1))
    a = data.draw(float_arrays(shape))
    axis = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1)) if shape else None
    keepdims = data.draw(st.booleans())
    x = leaf(a)
    out = getattr(x, name)(axis, keepdims)
    assert out.dtype == np.int64 and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(),
                                  getattr(np, name)(a, axis=axis, keepdims=keepdims))


# --------------------------------------------------------------------------------------------
# movement ops
# --------------------------------------------------------------------------------------------

@given(data=st.data())
def test_reshape_view_flatten(data):
    shape = data.draw(shapes())
    a = data.draw(float_arrays(shape))
    new_shape = tuple(data.draw(st.permutations(shape))) if shape else ()
    x = leaf(a)
    close(x.reshape(*new_shape) if new_shape else x.reshape(()), a.reshape(new_shape))
    close(x.view(new_shape), a.reshape(new_shape))
    close(x.reshape(-1), a.reshape(-1))
    gradcheck(lambda x: x.reshape(new_shape) * 1.5, [x])
    gradgradcheck(lambda x: x.reshape(new_shape) ** 2, [x])
    if len(shape) >= 1:
        start = data.draw(st.integers(-len(shape), len(shape) - 1))
        s0 = start % len(shape)
        end = data.draw(st.integers(s0, len(shape) - 1))
        merged = int(np.prod(shape[s0:end + 1]))  # explicit: -1 is ambiguous for size 0
        close(x.flatten(start, end), a.reshape(shape[:s0] + (merged,) + shape[end + 1:]))
        gradcheck(lambda x: x.flatten(start, end), [x])
    else:
        assert x.flatten().shape == (1,)


@given(data=st.data())
def test_squeeze_unsqueeze(data):
    shape = data.draw(shapes(min_side=1, max_side=2))
    a = data.draw(float_arrays(shape))
    x = leaf(a)
    close(x.squeeze(), np.squeeze(a))
    ones = [i for i, n in enumerate(shape) if n == 1]
    if ones:
        ax = data.draw(st.sampled_from(ones))
        close(x.squeeze(ax), np.squeeze(a, ax))
        gradcheck(lambda x: x.squeeze(ax), [x])
    ax = data.draw(st.integers(-len(shape) - 1, len(shape)))
    close(x.unsqueeze(ax), np.expand_dims(a, ax))
    gradcheck(lambda x: x.unsqueeze(ax).squeeze(), [x])


@given(data=st.data())
def test_transpose_permute_T(data):
    shape = data.draw(shapes())
    a = data.draw(float_arrays(shape))
    x = leaf(a)
    close(x.T, a.T)
    close(x.transpose(), a.T)
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    close(x.permute(*perm) if perm else x.permute(()), np.transpose(a, perm))
    gradcheck(lambda x: x.permute(perm) * 2.0, [x])
    gradgradcheck(lambda x: x.permute(perm) ** 2, [x])
    if len(shape) >= 2:
        d0, d1 = data.draw(st.integers(-len(shape), len(shape) - 1)), \
            data.draw(st.integers(-len(shape), len(shape) - 1))
        close(x.transpose(d0, d1), np.swapaxes(a, d0, d1))
        gradcheck(lambda x: x.transpose(d0, d1), [x])
        gradcheck(lambda x: x.T, [x])


@given(data=st.data())
def test_expand_and_broadcast_to(data):
    small, other = data.draw(broadcastable_shapes())
    target = np.broadcast_shapes(small, other)
    a = data.draw(float_arrays(small))
    x = leaf(a)
    close(x.expand(*target) if target else x.expand(()), np.broadcast_to(a, target))
    close(x.broadcast_to(target), np.broadcast_to(a, target))
    gradcheck(lambda x: x.broadcast_to(target), [x])
    gradgradcheck(lambda x: x.expand(target) ** 2, [x])
    if small:  # -1 keeps a dimension
        lead = target[:len(target) - len(small)]
        close(x.expand(*(lead + (-1,) * len(small))), np.broadcast_to(a, lead + small))


# --------------------------------------------------------------------------------------------
# indexing
# --------------------------------------------------------------------------------------------

@st.composite
def basic_index(draw, shape):
    """A basic index: per dimension an int, a slice (also negative steps) or nothing; maybe
    None (new axis) and Ellipsis."""
    items = []
    for n in shape:
        kinds = [st.slices(n)]
        if n > 0:
            kinds.append(st.integers(-n, n - 1))
        items.append(draw(st.one_of(*kinds)))
    cut = draw(st.integers(0, len(items)))
    items = items[:cut]
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), None)
    if draw(st.booleans()) and cut < len(shape):
        items.append(Ellipsis)
    return tuple(items)


@given(data=st.data())
def test_getitem_basic(data):
    shape = data.draw(shapes())
    a = data.draw(float_arrays(shape))
    index = data.draw(basic_index(shape))
    x = leaf(a)
    close(x[index], a[index])
    gradcheck(lambda x: x[index], [x])
    gradgradcheck(lambda x: x[index] ** 2, [x])


@given(data=st.data())
def test_getitem_integer_array_with_repeats_scatter_adds(data):
    shape = data.draw(shapes(min_dims=1, min_side=1))
    a = data.draw(float_arrays(shape))
    n = shape[0]
    idx = np.array(data.draw(st.lists(st.integers(-n, n - 1), max_size=6)), dtype=np.int64)
    x = leaf(a)
    close(x[idx], a[idx])
    close(x[Tensor(idx)], a[idx])
    gradcheck(lambda x: x[idx], [x])
    gradgradcheck(lambda x: x[idx] ** 2, [x])
    x[idx].sum().backward()
    counts = np.bincount(idx % n, minlength=n).astype(np.float64)
    close(x.grad, np.broadcast_to(counts.reshape((n,) + (1,) * (len(shape) - 1)), shape))


def test_getitem_advanced_mixed_with_slices():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = leaf(a)
    rows, cols = np.array([0, 2, 2]), np.array([1, 1, 3])
    close(x[:, rows, cols], a[:, rows, cols])
    gradcheck(lambda x: x[:, rows, cols], [x])
    close(x[[1, 0, 1], 1:], a[[1, 0, 1], 1:])
    gradcheck(lambda x: x[[1, 0, 1], 1:], [x])
    x[1, [0, 0, 0], -1].sum().backward()
    assert x.grad.numpy()[1, 0, 3] == 3.0 and x.grad.numpy().sum() == 3.0


@given(data=st.data())
def test_getitem_boolean_mask(data):
    shape = data.draw(shapes(min_dims=1))
    a = data.draw(float_arrays(shape))
    full_mask = data.draw(hnp.arrays(bool, shape))
    row_mask = data.draw(hnp.arrays(bool, shape[:1]))
    x = leaf(a)
    for mask in (full_mask, row_mask):
        close(x[mask], a[mask])
        close(x[Tensor(mask)], a[mask])
        gradcheck(lambda x: x[mask], [x])
    x[full_mask].sum().backward()
    close(x.grad, full_mask.astype(np.float64))


def test_tensor_iteration_and_len():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    rows = list(x)
    assert len(x) == 2 and len(rows) == 2
    close(rows[1], [3.0, 4.0])
    (rows[0] * 2 + rows[1]).sum().backward()
    close(x.grad, [[2.0, 2.0], [1.0, 1.0]])


# --------------------------------------------------------------------------------------------
# joining and splitting
# --------------------------------------------------------------------------------------------

@given(data=st.data())
def test_cat_and_stack(data):
    base = data.draw(shapes(min_dims=1))
    axis = data.draw(st.integers(-len(base), len(base) - 1))
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    arrays = []
    for size in sizes:
        shape = list(base)
        shape[axis] = size
        arrays.append(data.draw(float_arrays(tuple(shape))))
    xs = [leaf(a) for a in arrays]
    close(tg.cat(xs, axis), np.concatenate(arrays, axis))
    gradcheck(lambda *xs: tg.cat(xs, axis), xs)
    same = [data.draw(float_arrays(base)) for _ in sizes]
    saxis = data.draw(st.integers(-len(base) - 1, len(base)))
    ys = [leaf(a) for a in same]
    close(tg.stack(ys, saxis), np.stack(same, saxis))
    gradcheck(lambda *ys: tg.stack(ys, saxis), ys)
    gradgradcheck(lambda *ys: tg.stack(ys, saxis) ** 2, ys)


def test_stack_of_0d_tensors():
    xs = [leaf(1.0), leaf(2.0)]
    close(tg.stack(xs), [1.0, 2.0])
    gradcheck(lambda a, b: tg.stack([a, b]) * tg.tensor([1.0, 3.0]).double(), xs)


@given(data=st.data())
def test_split_and_chunk(data):
    shape = data.draw(shapes(min_dims=1, max_side=5))
    a = data.draw(float_arrays(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    length = shape[axis]
    size = data.draw(st.integers(1, 4))
    x = leaf(a)
    pieces = x.split(size, axis)
    expected = np.split(a, list(range(size, length, size)), axis) if length else [a]
    assert len(pieces) == len(expected)
    for p, e in zip(pieces, expected):
        close(p, e)

    def weighted_split(x):
        return tg.cat([p * float(i + 1) for i, p in enumerate(x.split(size, axis))], axis)

    gradcheck(weighted_split, [x])
    sections = data.draw(st.lists(st.integers(0, length), min_size=1, max_size=3)
                         .filter(lambda s: sum(s) <= length))
    sections = sections + [length - sum(sections)]
    parts = x.split(sections, axis)
    for p, e in zip(parts, np.split(a, np.cumsum(sections)[:-1], axis)):
        close(p, e)
    chunks = data.draw(st.integers(1, 4))
    got = x.chunk(chunks, axis)
    step = max(-(-length // chunks), 1)
    assert len(got) <= chunks
    for p, e in zip(got, np.split(a, list(range(step, length, step)), axis)):
        close(p, e)
    gradcheck(lambda x: tg.cat([p.sin() for p in x.chunk(chunks, axis)], axis), [x])


# --------------------------------------------------------------------------------------------
# matmul (C kernel or NumPy reference) with NumPy's 1-D and batch rules
# --------------------------------------------------------------------------------------------

@st.composite
def matmul_shapes(draw, max_side=4):
    m, k, n = (draw(st.integers(0, max_side)) for _ in range(3))
    kind_a = draw(st.sampled_from(["1d", "nd"]))
    kind_b = draw(st.sampled_from(["1d", "nd"]))
    batch_a, batch_b = draw(broadcastable_shapes(max_dims=2, max_side=3))
    sa = (k,) if kind_a == "1d" else batch_a + (m, k)
    sb = (k,) if kind_b == "1d" else batch_b + (k, n)
    return sa, sb


@given(data=st.data())
def test_matmul_forward_and_gradcheck(backend, data):
    sa, sb = data.draw(matmul_shapes())
    a, b = data.draw(float_arrays(sa)), data.draw(float_arrays(sb))
    x, y = leaf(a), leaf(b)
    close(x @ y, np.matmul(a, b), rtol=1e-9, atol=1e-9)
    close(x.matmul(y), np.matmul(a, b), rtol=1e-9, atol=1e-9)
    gradcheck(lambda x, y: x @ y, [x, y])


@FEW
@given(data=st.data())
def test_matmul_gradgradcheck(backend, data):
    sa, sb = data.draw(matmul_shapes(max_side=3))
    a, b = data.draw(float_arrays(sa)), data.draw(float_arrays(sb))
    gradgradcheck(lambda x, y: x @ y, [leaf(a), leaf(b)])
    gradgradcheck(lambda x: (x @ Tensor(b)).tanh(), [leaf(a)])


def test_matmul_float32_and_reflected(backend, rng):
    a = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal((5, 2)).astype(np.float32)
    x = Tensor(a, requires_grad=True)
    out = x @ b
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
    out2 = a @ Tensor(b, requires_grad=True)
    assert isinstance(out2, Tensor)
    np.testing.assert_allclose(out2.numpy(), a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), np.ones((3, 2)) @ b.T, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------
# nn.functional
# --------------------------------------------------------------------------------------------

def np_log_softmax(a, axis):
    return a - _np_logsumexp(a, axis, keepdims=True)


@given(data=st.data())
def test_softmax_and_log_softmax(backend, data):
    shape = data.draw(shapes(min_dims=1, min_side=1))
    a = data.draw(float_arrays(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = leaf(a)
    close(F.softmax(x, axis), np.exp(np_log_softmax(a, axis)), rtol=1e-9, atol=1e-12)
    close(F.log_softmax(x, axis), np_log_softmax(a, axis), rtol=1e-9, atol=1e-12)
    close(x.softmax(axis), np.exp(np_log_softmax(a, axis)), rtol=1e-9, atol=1e-12)
    gradcheck(lambda x: F.softmax(x, axis), [x])
    gradcheck(lambda x: x.log_softmax(axis), [x])


@FEW
@given(data=st.data())
def test_softmax_gradgradcheck(backend, data):
    shape = data.draw(shapes(min_dims=1, max_dims=2, min_side=1, max_side=3))
    a = data.draw(float_arrays(shape))
    gradgradcheck(lambda x: F.softmax(x, -1), [leaf(a)])
    gradgradcheck(lambda x: F.log_softmax(x, 0), [leaf(a)])


def test_softmax_backward_with_broadcast_gradient(backend, rng):
    """softmax(x).sum() sends a broadcast (stride-0) gradient into the fused backward."""
    a = rng.standard_normal((4, 5))
    x = leaf(a)
    F.softmax(x, -1).sum().backward()
    close(x.grad, np.zeros_like(a), atol=1e-12)
    x.grad = None
    F.log_softmax(x, 0)[:, 1].sum().backward()
    p = np.exp(np_log_softmax(a, 0))
    expected = np.zeros_like(a)
    expected[:, 1] = 1.0 - a.shape[0] * p[:, 1]  # d/dx_i1 of sum_i (x_i1 - logsumexp_k x_k1)
    close(x.grad, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("fn", [lambda x: F.softmax(x, -1), lambda x: F.log_softmax(x, -1),
                                lambda x: F.softmax(x, 0), lambda x: F.log_softmax(x, 1)],
                         ids=["softmax-1", "log_softmax-1", "softmax0", "log_softmax1"])
def test_softmax_float32_gradients_match_float64(backend, rng, fn):
    """gradcheck runs in float64; the float32 kernels' backward is checked against it here."""
    a = rng.standard_normal((7, 33))
    w = rng.standard_normal((7, 33))
    x32, x64 = Tensor(a.astype(np.float32), requires_grad=True), leaf(a)
    (fn(x32) * Tensor(w.astype(np.float32))).sum().backward()
    (fn(x64) * Tensor(w)).sum().backward()
    assert x32.grad.dtype == np.float32
    np.testing.assert_allclose(x32.grad.numpy(), x64.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_softmax_float32_extreme_values(backend):
    x = Tensor(np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32))
    y = F.softmax(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), [[1.0, 0.0, 0.0]], atol=1e-6)
    assert np.isfinite(F.log_softmax(x).numpy()).all()


def np_cross_entropy(logits, targets, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Reference: PyTorch's definition, written independently of the engine."""
    n, c = logits.shape
    logp = np_log_softmax(logits, 1)
    keep = targets != ignore_index
    safe = np.where(keep, targets, 0)
    nll = -logp[np.arange(n), safe]
    smooth = -logp.sum(axis=1) / c
    loss = ((1 - label_smoothing) * nll + label_smoothing * smooth) * keep
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / keep.sum()


@st.composite
def ce_case(draw, max_n=5, max_c=5):
    n, c = draw(st.integers(1, max_n)), draw(st.integers(1, max_c))
    logits = draw(float_arrays((n, c)))
    ignore_index = draw(st.sampled_from([-100, 0, 2]))
    targets = np.array(draw(st.lists(st.integers(0, c - 1) | st.just(ignore_index),
                                     min_size=n, max_size=n)), dtype=np.int64)
    valid = [t for t in range(c) if t != ignore_index]
    if np.all(targets == ignore_index) and valid:  # one counted row (else the mean is 0/0)
        targets[0] = valid[0]
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.3]))
    return logits, targets, ignore_index, reduction, smoothing


@given(case=ce_case())
def test_cross_entropy_against_numpy_reference(backend, case):
    logits, targets, ignore_index, reduction, smoothing = case
    if np.all(targets == ignore_index):
        return  # only possible for c == 1 with ignore_index 0; covered by a unit test
    x = leaf(logits)

    def fn(x):
        return F.cross_entropy(x, targets, ignore_index=ignore_index, reduction=reduction,
                               label_smoothing=smoothing)

    close(fn(x), np_cross_entropy(logits, targets, ignore_index, reduction, smoothing),
          rtol=1e-9, atol=1e-12)
    gradcheck(fn, [x])


@FEW
@given(case=ce_case(max_n=3, max_c=3))
def test_cross_entropy_gradgradcheck(backend, case):
    logits, targets, ignore_index, reduction, smoothing = case
    if np.all(targets == ignore_index):
        return
    gradgradcheck(lambda x: F.cross_entropy(x, targets, ignore_index=ignore_index,
                                            reduction=reduction, label_smoothing=smoothing),
                  [leaf(logits)])


def test_cross_entropy_other_layouts(backend, rng):
    """(C,) with a 0-d target and (N, C, d) with (N, d) targets, as in PyTorch."""
    a = rng.standard_normal(4)
    close(F.cross_entropy(leaf(a), np.array(2)), np_cross_entropy(a[None], np.array([2])))
    gradcheck(lambda x: F.cross_entropy(x, np.array(2)), [leaf(a)])
    b = rng.standard_normal((2, 3, 4))
    t = np.array([[0, 1, 2, 1], [2, 2, 0, -100]])
    flat_b, flat_t = b.transpose(0, 2, 1).reshape(-1, 3), t.reshape(-1)
    close(F.cross_entropy(leaf(b), t), np_cross_entropy(flat_b, flat_t))
    close(F.cross_entropy(leaf(b), t, reduction="none"),
          np_cross_entropy(flat_b, flat_t, reduction="none").reshape(2, 4))
    gradcheck(lambda x: F.cross_entropy(x, Tensor(t), label_smoothing=0.2), [leaf(b)])


def test_cross_entropy_float32_and_all_ignored(backend, rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    x = Tensor(a, requires_grad=True)
    loss = F.cross_entropy(x, np.array([1, 0, 3]))
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.item(), np_cross_entropy(a.astype(np.float64),
                                                             np.array([1, 0, 3])), rtol=1e-5)
    loss.backward()  # g = 1: the fused kernel's gradient is handed on as it is
    assert x.grad.dtype == np.float32
    p = np.exp(np_log_softmax(a.astype(np.float64), 1))
    p[np.arange(3), [1, 0, 3]] -= 1.0
    np.testing.assert_allclose(x.grad.numpy(), p / 3, rtol=1e-5, atol=1e-6)
    x.grad = None
    F.cross_entropy(x, np.array([1, 0, 3])).backward(gradient=Tensor(np.float32(2.0)))
    np.testing.assert_allclose(x.grad.numpy(), 2 * p / 3, rtol=1e-5, atol=1e-6)
    # every target ignored: mean over zero rows is NaN (as in PyTorch), sum is 0, grads are 0
    t = np.array([-100, -100, -100])
    assert np.isnan(F.cross_entropy(Tensor(a), t).item())
    y = Tensor(a.astype(np.float64), requires_grad=True)
    total = F.cross_entropy(y, t, reduction="sum")
    assert total.item() == 0.0
    total.backward()
    close(y.grad, np.zeros((3, 4)))


def test_nll_loss_matches_cross_entropy(rng):
    a = rng.standard_normal((4, 3))
    t = np.array([0, 2, 1, 2])
    close(F.nll_loss(F.log_softmax(leaf(a), 1), t), np_cross_entropy(a, t))
    gradcheck(lambda x: F.nll_loss(F.log_softmax(x, 1), t), [leaf(a)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(data=st.data())
def test_mse_loss(reduction, data):
    shape = data.draw(shapes(min_side=1))
    a, b = data.draw(float_arrays(shape)), data.draw(float_arrays(shape))
    x, y = leaf(a), leaf(b)
    ref = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction]((a - b) ** 2)
    close(F.mse_loss(x, y, reduction=reduction), ref)
    close(F.mse_loss(x, b, reduction=reduction), ref)
    gradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction), [x, y])
    gradgradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction), [x, y])


def test_mse_loss_matches_hand_derived_gradient(rng):
    """The brief's formula: d/dtheta mean((X theta - y)^2) = (2/n) X^T (X theta - y)."""
    X = rng.standard_normal((50, 4))
    yv = rng.standard_normal(50)
    theta = leaf(rng.standard_normal(4))
    F.mse_loss(Tensor(X) @ theta, yv).backward()
    close(theta.grad, 2 / 50 * X.T @ (X @ theta.numpy() - yv), rtol=1e-10)


@given(data=st.data())
def test_layer_norm(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    k = data.draw(st.integers(1, len(shape)))
    norm_shape = shape[len(shape) - k:]
    a = data.draw(float_arrays(shape))
    w = data.draw(float_arrays(norm_shape, min_value=0.5, max_value=2.0))
    b = data.draw(float_arrays(norm_shape))
    axes = tuple(range(len(shape) - k, len(shape)))
    mu = a.mean(axes, keepdims=True)
    var = a.var(axes, keepdims=True)
    ref = (a - mu) / np.sqrt(var + 1e-5) * w + b
    x, wt, bt = leaf(a), leaf(w), leaf(b)
    close(F.layer_norm(x, norm_shape, wt, bt), ref, rtol=1e-9, atol=1e-9)
    close(F.layer_norm(x, norm_shape), (a - mu) / np.sqrt(var + 1e-5), rtol=1e-9, atol=1e-9)
    gradcheck(lambda x, w, b: F.layer_norm(x, norm_shape, w, b), [x, wt, bt], atol=1e-4)


@FEW
@given(data=st.data())
def test_layer_norm_gradgradcheck(data):
    shape = data.draw(shapes(min_dims=1, max_dims=2, min_side=2, max_side=3))
    a = data.draw(float_arrays(shape))
    a = distinct(a, 0.5)  # keep the variance away from 0, where eps dominates the curvature
    w = data.draw(float_arrays(shape[-1:], min_value=0.5, max_value=2.0))
    gradgradcheck(lambda x, w: F.layer_norm(x, shape[-1:], w, eps=1e-3), [leaf(a), leaf(w)],
                  atol=1e-4)


@given(data=st.data())
def test_embedding(data):
    num, dim = data.draw(st.integers(1, 5)), data.draw(st.integers(0, 3))
    ids_shape = data.draw(shapes(max_dims=2))
    ids = data.draw(hnp.arrays(np.int64, ids_shape, elements=st.integers(0, num - 1)))
    w = data.draw(float_arrays((num, dim)))
    weight = leaf(w)
    close(F.embedding(ids, weight), w[ids])
    close(F.embedding(Tensor(ids), weight), w[ids])
    gradcheck(lambda weight: F.embedding(ids, weight), [weight])
    F.embedding(ids, weight).sum().backward()
    counts = np.bincount(ids.reshape(-1), minlength=num).astype(np.float64)
    close(weight.grad, np.repeat(counts[:, None], dim, axis=1))


@given(data=st.data())
def test_linear(backend, data):
    batch = data.draw(shapes(max_dims=2))
    fin, fout = data.draw(st.integers(0, 4)), data.draw(st.integers(1, 4))
    a = data.draw(float_arrays(batch + (fin,)))
    w = data.draw(float_arrays((fout, fin)))
    b = data.draw(float_arrays((fout,)))
    x, wt, bt = leaf(a), leaf(w), leaf(b)
    close(F.linear(x, wt, bt), a @ w.T + b, rtol=1e-9, atol=1e-9)
    close(F.linear(x, wt), a @ w.T, rtol=1e-9, atol=1e-9)
    gradcheck(lambda x, w, b: F.linear(x, w, b), [x, wt, bt])


def test_dropout_statistics_and_modes():
    tg.manual_seed(0)
    p = 0.3
    x = Tensor(np.ones((200, 500)), requires_grad=True)
    y = F.dropout(x, p, training=True)
    values = y.numpy()
    kept = values != 0
    # 100,000 Bernoulli(0.7) draws: the kept fraction is within 0.7 +- 5 standard errors
    assert abs(kept.mean() - (1 - p)) < 5 * math.sqrt(p * (1 - p) / values.size)
    np.testing.assert_allclose(values[kept], 1 / (1 - p))  # inverted dropout scale
    assert abs(values.mean() - 1.0) < 0.02  # the expectation is preserved
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), values)  # same mask, same scale
    # eval mode and p = 0 are the identity (the same tensor), p = 1 zeroes everything
    assert F.dropout(x, p, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert not F.dropout(x, 1.0).numpy().any()
    # manual_seed makes the mask reproducible
    tg.manual_seed(7)
    m1 = F.dropout(Tensor(np.ones(100)), 0.5).numpy()
    tg.manual_seed(7)
    m2 = F.dropout(Tensor(np.ones(100)), 0.5).numpy()
    np.testing.assert_array_equal(m1, m2)


def test_functional_activations_match_tensor_methods(rng):
    a = rng.standard_normal(10)
    x = leaf(a)
    close(F.sigmoid(x), x.sigmoid().numpy())
    close(F.tanh(x), np.tanh(a))
    close(F.gelu(x), x.gelu().numpy())


# --------------------------------------------------------------------------------------------
# casts and mixed dtypes
# --------------------------------------------------------------------------------------------

def test_cast_gradient_goes_back_to_the_input_dtype():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = x.double() * Tensor(np.array([3.0, 4.0]))
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
    close(x.grad, [3.0, 4.0])
    gradcheck(lambda x: x.to(np.float32).to(np.float64) * 2, [leaf([0.5, 1.5])], eps=1e-2,
              atol=1e-4)
    assert not x.long().requires_grad and x.long().dtype == np.int64


# --------------------------------------------------------------------------------------------
# a composite: many ops in one graph
# --------------------------------------------------------------------------------------------

def test_small_network_gradcheck_and_gradgradcheck(backend, rng):
    """Embedding -> linear -> gelu -> layer_norm -> attention-like softmax mix -> linear ->
    cross-entropy with label smoothing: every parameter against finite differences."""
    ids = np.array([[0, 2, 1], [3, 3, 0]])
    targets = np.array([[1, 0, 2], [2, -100, 1]])
    params = [leaf(rng.standard_normal(s) * 0.5) for s in [(4, 3), (5, 3), (5,), (5,), (3, 5)]]

    def net(emb, w1, b1, ln_w, w2):
        h = F.embedding(ids, emb)                                  # (2, 3, 3)
        h = F.gelu(F.linear(h, w1, b1), "tanh")                    # (2, 3, 5)
        h = F.layer_norm(h, 5, ln_w)
        scores = (h @ h.transpose(-1, -2)) * (1 / math.sqrt(5))    # (2, 3, 3)
        causal = np.triu(np.ones((3, 3), dtype=bool), k=1)
        h = F.softmax(scores.masked_fill(Tensor(causal), -1e9), -1) @ h
        logits = F.linear(h, w2)                                   # (2, 3, 3)
        return F.cross_entropy(logits.reshape(-1, 3), targets.reshape(-1),
                               label_smoothing=0.1)

    gradcheck(net, params, atol=1e-5)
    gradgradcheck(lambda w2: net(*params[:4], w2), [params[4]], atol=1e-5)
