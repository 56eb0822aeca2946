"""Tools for testing gradients: finite-difference checks and hypothesis strategies.

``gradcheck(fn, inputs)`` compares the gradients that ``backward()`` computes with central
finite differences, (f(x + eps) - f(x - eps)) / (2 eps), one input element at a time, in float64.
A non-scalar output is reduced to a scalar with fixed random weights, sum(w * fn(...)), so a
single backward pass checks the whole vector-Jacobian product.

The hypothesis strategies (``shapes``, ``broadcastable_shapes``, ``float_arrays``, ``tensors``)
need the ``hypothesis`` package (``pip install tinygrad_lite[test]``).
"""

from __future__ import annotations

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


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              seed: int = 0, raise_exception: bool = True) -> bool:
    """Check the gradients of ``fn(*inputs)`` against central finite differences, in float64.

    ``inputs``: tensors (or arrays); float ones that require grad are checked, the rest are
    passed through unchanged. Returns True, or raises ``GradcheckError`` naming the worst element
    (input index, position, analytic and numeric values); with ``raise_exception=False`` returns
    False instead.
    """
    inputs = _as_float64_inputs(inputs)
    checked = [i for i, t in enumerate(inputs) if t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    with autograd.enable_grad():
        out = fn(*inputs)
    weights = Tensor(np.random.default_rng(seed).uniform(0.5, 1.5, out.shape))

    def scalar():
        with autograd.no_grad():
            return float((fn(*inputs) * weights).sum().item())

    for t in inputs:
        t.grad = None
    with autograd.enable_grad():
        loss = (fn(*inputs) * weights).sum()
        if loss.requires_grad:
            grads = autograd.grad(loss, [inputs[i] for i in checked], allow_unused=True)
        else:  # no recorded dependence on any input: the analytic gradient is zero
            grads = [None] * len(checked)
    worst = None
    for i, g in zip(checked, grads):
        analytic = np.zeros(inputs[i].shape) if g is None else g.data.astype(np.float64)
        numeric = _numeric_gradient(scalar, inputs, i, eps)
        m = _compare(analytic, numeric, i, atol, rtol)
        if m is not None and (worst is None or abs(m.analytic - m.numeric) >
                              abs(worst.analytic - worst.numeric)):
            worst = m
    if worst is None:
        return True
    if raise_exception:
        raise GradcheckError(f"gradcheck failed: {worst}")
    return False


def gradgradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  seed: int = 0, raise_exception: bool = True) -> bool:
    """Check second derivatives: gradcheck of x -> sum_i <v_i, d(sum(w * fn(x)))/dx_i>.

    The first gradients are computed with ``create_graph=True``, so this checks that the
    backward formulas are themselves correctly differentiable.
    """
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

    return gradcheck(first_derivative_projection, inputs, eps, atol, rtol, seed, raise_exception)


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
