"""Tools for testing gradients: finite-difference checks and hypothesis strategies.

``gradcheck(fn, inputs)`` compares the gradients that ``backward()`` computes with central
finite differences, (f(x + eps) - f(x - eps)) / (2 eps), one input element at a time, in float64.
A non-scalar output is reduced to a scalar with fixed random weights, sum(w * fn(...)), so a
single backward pass checks the whole vector-Jacobian product; the cost is the finite
differences: two evaluations of ``fn`` per input element.

``gradcheck(fn, inputs, fast_mode=True)`` (as PyTorch's ``fast_mode`` and HIPS/autograd's
``check_grads``) checks random directions instead of elements: for a random output weighting v
and a random input direction u it compares v^T J u from the engine (one backward pass gives
v^T J, dotted with u) with the central difference of v^T f(x + eps u). That costs two
evaluations of ``fn`` per input and direction, whatever the input's size.

The hypothesis strategies (``shapes``, ``broadcastable_shapes``, ``float_arrays``, ``tensors``,
``edge_floats``, ``edge_arrays``) need the ``hypothesis`` package
(``pip install tinygrad_lite[test]``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from . import autograd
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by gradcheck/gradgradcheck; the message names the worst element."""


@dataclass
class Mismatch:
    input_index: int
    position: tuple
    analytic: float
    numeric: float

    def __str__(self) -> str:
        return (f"input {self.input_index} at position {self.position}: analytic gradient "
                f"{self.analytic:.10g}, numeric (central difference) {self.numeric:.10g}, "
                f"difference {abs(self.analytic - self.numeric):.3g}")


@dataclass
class DirectionMismatch:
    """fast mode: the projection v^T J u of one input that disagrees."""
    input_index: int
    direction: int
    seed: int
    analytic: float
    numeric: float

    def __str__(self) -> str:
        return (f"input {self.input_index} along random direction {self.direction} (seed "
                f"{self.seed}): analytic v^T J u {self.analytic:.10g}, numeric (central "
                f"difference of v^T f(x + eps u)) {self.numeric:.10g}, difference "
                f"{abs(self.analytic - self.numeric):.3g}. Rerun with fast_mode=False to find "
                f"the element")


def _as_float64_inputs(inputs):
    out = []
    for t in inputs:
        if isinstance(t, Tensor) and t.dtype.kind == "f":
            out.append(Tensor(t.data.astype(np.float64), requires_grad=t.requires_grad))
        elif isinstance(t, Tensor):
            out.append(t)
        else:
            out.append(Tensor(np.asarray(t, dtype=np.float64), requires_grad=True))
    return out


def _numeric_gradient(scalar_fn, inputs, i, eps):
    """d scalar_fn / d inputs[i] by central differences, perturbing one element at a time."""
    data = inputs[i].data
    grad = np.zeros(data.shape, dtype=np.float64)
    flat = data.reshape(-1)  # a view: perturbing it perturbs the input
    for k in range(flat.size):
        original = flat[k]
        flat[k] = original + eps
        plus = scalar_fn()
        flat[k] = original - eps
        minus = scalar_fn()
        flat[k] = original
        grad.reshape(-1)[k] = (plus - minus) / (2 * eps)
    return grad


def _compare(analytic, numeric, i, atol, rtol):
    """The worst element of |analytic - numeric| - (atol + rtol |numeric|), if it is positive."""
    excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if excess.size == 0 or excess.max() <= 0:
        return None
    k = np.unravel_index(int(np.argmax(excess)), excess.shape)
    return Mismatch(i, tuple(int(v) for v in k), float(analytic[k]), float(numeric[k]))


def _check_fast_mode_arguments(name, fast_mode, num_directions):
    if not isinstance(fast_mode, bool):
        raise TypeError(f"{name}: fast_mode must be True or False, got {fast_mode!r}")
    if isinstance(num_directions, bool) or not isinstance(num_directions, (int, np.integer)) \
            or num_directions < 1:
        raise ValueError(f"{name}: num_directions must be a positive int (the number of random "
                         f"directions fast mode checks), got {num_directions!r}")


def _worse(m, worst):
    """The mismatch with the larger |analytic - numeric| (either may be None)."""
    if m is None or (worst is not None and abs(m.analytic - m.numeric) <=
                     abs(worst.analytic - worst.numeric)):
        return worst
    return m


def _failed(mode: str, worst, raise_exception: bool) -> bool:
    if worst is None:
        return True
    if raise_exception:
        raise GradcheckError(f"{mode} failed: {worst}")
    return False


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              seed: int = 0, raise_exception: bool = True, fast_mode: bool = False,
              num_directions: int = 4) -> bool:
    """Check the gradients of ``fn(*inputs)`` against central finite differences, in float64.

    ``inputs``: tensors (or arrays); float ones that require grad are checked, the rest are
    passed through unchanged. Returns True, or raises ``GradcheckError`` naming the worst element
    (input index, position, analytic and numeric values); with ``raise_exception=False`` returns
    False instead.

    ``fast_mode=True`` checks ``num_directions`` random projections v^T J u per input instead
    of every element (see the module docstring and ``_gradcheck_fast``); a failure names the
    input and the direction.
    """
    _check_fast_mode_arguments("gradcheck", fast_mode, num_directions)
    inputs = _as_float64_inputs(inputs)
    checked = [i for i, t in enumerate(inputs) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    if fast_mode:
        worst = _gradcheck_fast(fn, inputs, checked, eps, atol, rtol, seed, num_directions)
        return _failed("gradcheck (fast mode)", worst, raise_exception)
    with autograd.enable_grad():
        out = fn(*inputs)
    weights = Tensor(np.random.default_rng(seed).uniform(0.5, 1.5, out.shape))
    scalar = functools.partial(_weighted_sum, fn, inputs, weights)
    grads = _vector_jacobian_products(fn, inputs, checked, weights)
    worst = None
    for i, g in zip(checked, grads):
        numeric = _numeric_gradient(scalar, inputs, i, eps)
        worst = _worse(_compare(g, numeric, i, atol, rtol), worst)
    return _failed("gradcheck", worst, raise_exception)


def _weighted_sum(fn, inputs, weights) -> float:
    """sum(weights * fn(*inputs)) as a number, without recording a graph."""
    with autograd.no_grad():
        return float((fn(*inputs) * weights).sum().item())


def _vector_jacobian_products(fn, inputs, checked, weights) -> list:
    """One backward pass: d sum(weights * fn(*inputs)) / d inputs[i] for each checked i, as
    float64 arrays (zeros for an input the output does not depend on)."""
    for t in inputs:
        t.grad = None
    with autograd.enable_grad():
        loss = (fn(*inputs) * weights).sum()
        if loss.requires_grad:
            grads = autograd.grad(loss, [inputs[i] for i in checked], allow_unused=True)
        else:  # no recorded dependence on any input: the analytic gradient is zero
            grads = [None] * len(checked)
    return [np.zeros(inputs[i].shape) if g is None else g.data.astype(np.float64)
            for i, g in zip(checked, grads)]


def _gradcheck_fast(fn, inputs, checked, eps, atol, rtol, seed, num_directions):
    """The worst disagreeing projection v^T J_i u_i over ``num_directions`` random (v, u).

    Per direction: one backward pass with output weights v gives v^T J_i for every input i at
    once; dotted with a random u_i it is compared with the central difference
    (s(x_i + eps u_i) - s(x_i - eps u_i)) / (2 eps), s = v^T f. v and u are standard normal, so
    an error in a single element k of v^T J_i shows up as error * u_k -- a normal number, which
    is rarely tiny; the tolerance is atol + rtol * |numeric| as in exact mode. Each direction
    misses such an error only with small probability, so several directions make a miss
    unlikely (tests/test_testing.py measures it); exact mode finds the element.
    """
    rng = np.random.default_rng(seed)
    with autograd.enable_grad():
        out_shape = fn(*inputs).shape
    worst = None
    for d in range(num_directions):
        v = Tensor(rng.standard_normal(out_shape))
        grads = _vector_jacobian_products(fn, inputs, checked, v)
        scalar = functools.partial(_weighted_sum, fn, inputs, v)
        for i, g in zip(checked, grads):
            u = rng.standard_normal(inputs[i].shape)
            analytic = float(np.sum(g * u))
            numeric = _numeric_directional_derivative(scalar, inputs[i], u, eps)
            if abs(analytic - numeric) > atol + rtol * abs(numeric):
                worst = _worse(DirectionMismatch(i, d, seed, analytic, numeric), worst)
    return worst


def _numeric_directional_derivative(scalar_fn, tensor, u, eps):
    """(s(x + eps u) - s(x - eps u)) / (2 eps), moving the whole input along u at once."""
    original = tensor.data.copy()
    try:
        tensor.data[...] = original + eps * u
        plus = scalar_fn()
        tensor.data[...] = original - eps * u
        minus = scalar_fn()
    finally:
        tensor.data[...] = original
    return (plus - minus) / (2 * eps)


def gradgradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  seed: int = 0, raise_exception: bool = True, fast_mode: bool = False,
                  num_directions: int = 4) -> bool:
    """Check second derivatives: gradcheck of x -> sum_i <v_i, d(sum(w * fn(x)))/dx_i>.

    The first gradients are computed with ``create_graph=True``, so this checks that the
    backward formulas are themselves correctly differentiable. ``fast_mode`` and
    ``num_directions`` are passed to that gradcheck: each of its finite differences runs a
    forward and a backward pass, so fast mode saves the most here.
    """
    _check_fast_mode_arguments("gradgradcheck", fast_mode, num_directions)
    inputs = _as_float64_inputs(inputs)
    checked = [i for i, t in enumerate(inputs) if t.requires_grad]
    rng = np.random.default_rng(seed + 1)
    with autograd.enable_grad():
        out = fn(*inputs)
    weights = Tensor(rng.uniform(0.5, 1.5, out.shape))
    directions = [Tensor(rng.uniform(0.5, 1.5, inputs[i].shape)) for i in checked]

    def first_derivative_projection(*xs):
        with autograd.enable_grad():  # gradcheck evaluates this under no_grad too
            loss = (fn(*xs) * weights).sum()
            grads = autograd.grad(loss, [xs[i] for i in checked], create_graph=True,
                                  allow_unused=True)
        total = None
        for g, v in zip(grads, directions):
            if g is None:
                continue
            term = (g * v).sum()
            total = term if total is None else total + term
        if total is None:
            raise ValueError("gradgradcheck: fn does not depend on any input")
        return total  # no graph when fn is piecewise linear: its second derivative is zero

    return gradcheck(first_derivative_projection, inputs, eps, atol, rtol, seed, raise_exception,
                     fast_mode, num_directions)


# --------------------------------------------------------------------------------------------
# hypothesis strategies
# --------------------------------------------------------------------------------------------

def _hypothesis():
    try:
        import hypothesis.extra.numpy as hnp
        import hypothesis.strategies as st
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("tinygrad_lite.testing strategies need hypothesis: "
                          "pip install 'tinygrad_lite[test]'") from e
    return st, hnp


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 0, max_side: int = 4):
    """Array shapes, including 0-d and size-0/size-1 dimensions by default."""
    st, hnp = _hypothesis()
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = 3,
                         min_side: int = 0, max_side: int = 4):
    """Tuples of shapes that broadcast together (some axes stretched from 1, some missing)."""
    st, hnp = _hypothesis()
    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims,
                                             max_dims=max_dims, min_side=min_side,
                                             max_side=max_side).map(lambda bs: bs.input_shapes)


def float_arrays(shape, dtype=np.float64, min_value: float = -3.0, max_value: float = 3.0):
    """Float arrays of ``shape`` (a shape or a strategy of shapes) with bounded, finite values."""
    st, hnp = _hypothesis()
    elements = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False,
                         width=np.dtype(dtype).itemsize * 8)
    return hnp.arrays(dtype=dtype, shape=shape, elements=elements)


def tensors(shape=None, dtype=np.float64, min_value: float = -3.0, max_value: float = 3.0,
            requires_grad: bool = True):
    """Tensors with values from ``float_arrays`` (any shape from ``shapes()`` if not given)."""
    shape = shapes() if shape is None else shape
    return float_arrays(shape, dtype, min_value, max_value).map(
        lambda a: Tensor(a, requires_grad=requires_grad))


def edge_floats(dtype=np.float64, max_magnitude: float | None = None):
    """Finite floats that stress an op's numerics, both signs: 0 and -0, 1, the smallest
    subnormal and normal magnitudes, the largest finite one, and magnitudes spread evenly over
    the binary exponents in between (so 1e-300 is as likely as 1e300 in float64, where plain
    uniform floats would almost never be tiny). ``max_magnitude`` caps |value| (e.g. 30.0 for a
    gradient check, where a step of eps must still change x)."""
    st, _ = _hypothesis()
    info = np.finfo(dtype)
    if max_magnitude is not None and not max_magnitude > 0:
        raise ValueError(f"edge_floats: max_magnitude must be a positive number, got "
                         f"{max_magnitude!r}")
    cap = float(info.max) if max_magnitude is None else min(float(max_magnitude), float(info.max))
    specials = [0.0, 1.0, float(info.smallest_subnormal), float(info.tiny), cap]
    highest_exponent = math.frexp(cap)[1] - 1  # cap = m * 2**(e - 1) with 1 <= m < 2
    width = info.bits
    spread = st.builds(lambda mantissa, exponent: min(float(np.ldexp(mantissa, exponent)), cap),
                       st.floats(1.0, 2.0, exclude_max=True, width=width),
                       st.integers(int(info.minexp), highest_exponent))
    magnitude = st.one_of(st.sampled_from([v for v in specials if v <= cap]), spread)
    return st.builds(lambda m, negative: float(dtype(-m if negative else m)), magnitude,
                     st.booleans())


def edge_arrays(shape, dtype=np.float64, max_magnitude: float | None = None):
    """Arrays of ``shape`` (a shape or a strategy of shapes) whose elements are ``edge_floats``."""
    _, hnp = _hypothesis()
    return hnp.arrays(dtype=dtype, shape=shape, elements=edge_floats(dtype, max_magnitude))
