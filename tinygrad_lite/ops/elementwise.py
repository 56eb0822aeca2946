"""Elementwise operations: forward on NumPy arrays, backward in Tensor operations.

Notation in the docstrings: ``g`` is dL/d(out), the gradient arriving from above; each line
gives what backward returns for each input. Binary ops broadcast like NumPy, so their
gradients are summed back to each input's shape with ``unbroadcast``.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function, unbroadcast
from ..tensor import Tensor


def _const(array: np.ndarray) -> Tensor:
    """A tensor outside the graph (masks and other constants used by backward formulas)."""
    return Tensor._make(array)


# --------------------------------------------------------------------------------------------
# Binary arithmetic
# --------------------------------------------------------------------------------------------

class Add(Function):
    """out = x + y;  dx = g,  dy = g"""
    uses_inputs = False

    def forward(self, x, y):
        return x + y

    def backward(self, g, out):
        x, y = self.inputs
        return (unbroadcast(g, x.shape) if x.requires_grad else None,
                unbroadcast(g, y.shape) if y.requires_grad else None)


class Sub(Function):
    """out = x - y;  dx = g,  dy = -g"""
    uses_inputs = False

    def forward(self, x, y):
        return x - y

    def backward(self, g, out):
        x, y = self.inputs
        return (unbroadcast(g, x.shape) if x.requires_grad else None,
                unbroadcast(-g, y.shape) if y.requires_grad else None)


class Mul(Function):
    """out = x * y;  dx = g * y,  dy = g * x"""

    def forward(self, x, y):
        return x * y

    def backward(self, g, out):
        x, y = self.inputs
        return (unbroadcast(g * y, x.shape) if x.requires_grad else None,
                unbroadcast(g * x, y.shape) if y.requires_grad else None)


class Div(Function):
    """out = x / y;  dx = g / y,  dy = -g * x / y**2"""

    def forward(self, x, y):
        out = x / y
        if x.dtype.kind != "f" and y.dtype.kind != "f":  # int / int -> float32, as in PyTorch
            out = out.astype(np.float32)
        return out

    def backward(self, g, out):
        x, y = self.inputs
        return (unbroadcast(g / y, x.shape) if x.requires_grad else None,
                unbroadcast(-g * x / (y * y), y.shape) if y.requires_grad else None)


class Pow(Function):
    """out = x ** y;  dx = g * y * x**(y-1),  dy = g * out * log(x)"""
    uses_output = True

    def forward(self, x, y):
        return x ** y

    def backward(self, g, out):
        x, y = self.inputs
        gx = gy = None
        # At x = 0 the formulas can meet 0 * inf where the true limit is 0 (as in PyTorch):
        # y * 0**(y-1) with y = 0, and 0**y * log(0) with y >= 0. There, x is replaced by 1.
        if x.requires_grad:
            base = _one_where((x.data == 0) & (y.data == 0), x)
            gx = unbroadcast(g * y * base ** (y - 1), x.shape)
        if y.requires_grad:
            gy = unbroadcast(g * out * _one_where((x.data == 0) & (y.data >= 0), x).log(),
                             y.shape)
        return gx, gy


def _one_where(mask: np.ndarray, x: Tensor) -> Tensor:
    """``x`` with the positions in ``mask`` set to 1 (mask may broadcast x to a larger shape)."""
    if not mask.any():
        return x
    return where(_const(mask), _const(np.ones((), dtype=x.dtype)), x)


class Maximum(Function):
    """out = max(x, y);  dx = g where x > y,  dy = g where y > x  (ties split the gradient)"""

    def forward(self, x, y):
        return np.maximum(x, y)

    def backward(self, g, out):
        x, y = self.inputs
        share_x = (x.data > y.data) + 0.5 * (x.data == y.data)
        share_x = _const(share_x.astype(g.dtype))
        return (unbroadcast(g * share_x, x.shape) if x.requires_grad else None,
                unbroadcast(g * (1 - share_x), y.shape) if y.requires_grad else None)


class Minimum(Function):
    """out = min(x, y);  dx = g where x < y,  dy = g where y < x  (ties split the gradient)"""

    def forward(self, x, y):
        return np.minimum(x, y)

    def backward(self, g, out):
        x, y = self.inputs
        share_x = (x.data < y.data) + 0.5 * (x.data == y.data)
        share_x = _const(share_x.astype(g.dtype))
        return (unbroadcast(g * share_x, x.shape) if x.requires_grad else None,
                unbroadcast(g * (1 - share_x), y.shape) if y.requires_grad else None)


class Where(Function):
    """out = x where cond else y;  dx = g where cond (else 0),  dy = g where not cond"""
    # uses_inputs stays True: backward reads cond's values, so an in-place change to cond
    # before backward must be caught, and cond must be freed after it.

    def forward(self, cond, x, y):
        return np.where(cond, x, y)

    def backward(self, g, out):
        cond, x, y = self.inputs
        zero = _const(np.zeros((), dtype=g.dtype))
        return (None,
                unbroadcast(where(cond, g, zero), x.shape) if x.requires_grad else None,
                unbroadcast(where(cond, zero, g), y.shape) if y.requires_grad else None)


def where(cond, x, y) -> Tensor:
    """Elementwise choice: ``x`` where ``cond`` is True, else ``y`` (all three broadcast)."""
    try:
        cond = cond if isinstance(cond, Tensor) else Tensor(cond)
        if not isinstance(x, Tensor):
            x = y._operand(x, "where") if isinstance(y, Tensor) else Tensor(x)
        if not isinstance(y, Tensor):
            y = x._operand(y, "where")
    except (TypeError, ValueError) as e:
        if str(e).startswith("where"):
            raise
        raise type(e)(f"where: cond, x and y must be Tensors, numbers or arrays of numbers "
                      f"({e})") from None
    if cond.dtype != np.bool_:
        raise TypeError(f"where: the condition must be a bool tensor, got dtype {cond.dtype}")
    return Where.apply(cond, x, y)


# --------------------------------------------------------------------------------------------
# Tensor-with-Python-number arithmetic: the number is an option, not an input, so there is no
# constant tensor to create and no gradient to sum back for it (the common x * 0.5, x ** 2).
# --------------------------------------------------------------------------------------------

class AddScalar(Function):
    """out = x + c;  dx = g"""
    uses_inputs = False

    def forward(self, x):
        return x + self.c

    def backward(self, g, out):
        return g


class RSubScalar(Function):
    """out = c - x;  dx = -g"""
    uses_inputs = False

    def forward(self, x):
        return self.c - x

    def backward(self, g, out):
        return -g


class MulScalar(Function):
    """out = x * c;  dx = g * c"""
    uses_inputs = False

    def forward(self, x):
        return x * self.c

    def backward(self, g, out):
        return g * self.c


class DivScalar(Function):
    """out = x / c;  dx = g / c"""
    uses_inputs = False

    def forward(self, x):
        return x / self.c

    def backward(self, g, out):
        return g / self.c


class PowScalar(Function):
    """out = x ** c;  dx = g * c * x ** (c - 1)"""

    def forward(self, x):
        return x ** self.c

    def backward(self, g, out):
        x = self.inputs[0]
        if self.c == 2:
            return g * x * 2
        if self.c == 0:  # x ** 0 = 1: the gradient is 0, also at x = 0 (not 0 * 0 ** -1 = NaN)
            return g * 0.0
        return g * self.c * x ** (self.c - 1)


# --------------------------------------------------------------------------------------------
# Unary math
# --------------------------------------------------------------------------------------------

class Neg(Function):
    """out = -x;  dx = -g"""
    uses_inputs = False

    def forward(self, x):
        return -x

    def backward(self, g, out):
        return -g


class Exp(Function):
    """out = exp(x);  dx = g * out"""
    uses_inputs, uses_output = False, True

    def forward(self, x):
        return np.exp(x)

    def backward(self, g, out):
        return g * out


class Log(Function):
    """out = log(x);  dx = g / x"""

    def forward(self, x):
        return np.log(x)

    def backward(self, g, out):
        return g / self.inputs[0]


class Sqrt(Function):
    """out = sqrt(x);  dx = g / (2 * out)"""
    uses_inputs, uses_output = False, True

    def forward(self, x):
        return np.sqrt(x)

    def backward(self, g, out):
        return g / (out * 2)


class Sin(Function):
    """out = sin(x);  dx = g * cos(x)"""

    def forward(self, x):
        return np.sin(x)

    def backward(self, g, out):
        return g * self.inputs[0].cos()


class Cos(Function):
    """out = cos(x);  dx = -g * sin(x)"""

    def forward(self, x):
        return np.cos(x)

    def backward(self, g, out):
        return -g * self.inputs[0].sin()


class Tanh(Function):
    """out = tanh(x);  dx = g * (1 - out**2)"""
    uses_inputs, uses_output = False, True

    def forward(self, x):
        return np.tanh(x)

    def backward(self, g, out):
        return g * (1 - out * out)


class Sigmoid(Function):
    """out = 1 / (1 + exp(-x));  dx = g * out * (1 - out)"""
    uses_inputs, uses_output = False, True

    def forward(self, x):
        # exp(-log(1 + exp(-x))) never overflows, for large positive or negative x
        return np.exp(-np.logaddexp(0, -x)).astype(x.dtype, copy=False)

    def backward(self, g, out):
        return g * out * (1 - out)


class Relu(Function):
    """out = max(x, 0);  dx = g where x > 0 (else 0)"""
    uses_inputs, uses_output = False, True

    def forward(self, x):
        return np.maximum(x, 0)

    def backward(self, g, out):
        return g * _const((out.data > 0).astype(g.dtype))


class LeakyRelu(Function):
    """out = x if x > 0 else slope * x;  dx = g if x > 0 else slope * g"""

    def forward(self, x):
        return np.where(x > 0, x, x * x.dtype.type(self.slope))

    def backward(self, g, out):
        x = self.inputs[0].data
        return g * _const(np.where(x > 0, 1, self.slope).astype(g.dtype))


class Abs(Function):
    """out = |x|;  dx = g * sign(x)   (0 at x = 0, as in PyTorch)"""

    def forward(self, x):
        return np.abs(x)

    def backward(self, g, out):
        return g * _const(np.sign(self.inputs[0].data).astype(g.dtype))


class Clip(Function):
    """out = min(max(x, low), high);  dx = g where low <= x <= high (else 0)"""

    def forward(self, x):
        return np.clip(x, self.low, self.high)

    def backward(self, g, out):
        x = self.inputs[0].data
        inside = np.ones(x.shape, dtype=bool)
        if self.low is not None:
            inside &= x >= self.low
        if self.high is not None:
            inside &= x <= self.high
        return g * _const(inside.astype(g.dtype))


class Sign(Function):
    """out = sign(x) (-1, 0 or 1);  dx = 0 (the function is flat wherever it has a derivative)"""
    uses_inputs = False

    def forward(self, x):
        return x.copy() if x.dtype == np.bool_ else np.sign(x)  # NumPy has no bool sign

    def backward(self, g, out):
        return g * 0.0


def _half_as_float(x: np.ndarray) -> np.ndarray:
    """float16 data computed in float32, as PyTorch's op math does: a tiny beta such as 1e-12
    would be 0 in float16 (and inf * 0 a NaN)."""
    return x.astype(np.float32) if x.dtype == np.float16 else x


class Softplus(Function):
    """out = log(1 + exp(βx)) / β (x where βx > threshold);  dx = g * sigmoid(βx) (g there)"""

    def forward(self, x):
        scaled = _half_as_float(x) * self.beta
        smooth = np.logaddexp(0, scaled) / self.beta
        return np.where(scaled > self.threshold, x, smooth).astype(x.dtype, copy=False)

    def backward(self, g, out):
        x = self.inputs[0]
        linear = _const(_half_as_float(x.data) * self.beta > self.threshold)
        return where(linear, g, g * (x * self.beta).sigmoid())


class Relu6(Function):
    """out = min(max(x, 0), 6);  dx = g where 0 < x < 6 (else 0)"""

    def forward(self, x):
        return np.clip(x, 0, 6).astype(x.dtype, copy=False)

    def backward(self, g, out):
        x = self.inputs[0].data
        return g * _const(((x > 0) & (x < 6)).astype(g.dtype))


class Hardswish(Function):
    """out = x * relu6(x + 3) / 6;  dx = g * (0, x/3 + 1/2, 1) for x < -3, -3 <= x <= 3, x > 3"""

    def forward(self, x):
        return (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)

    def backward(self, g, out):
        x = self.inputs[0]
        middle = _const(((x.data >= -3) & (x.data <= 3)).astype(g.dtype))
        above = _const((x.data > 3).astype(g.dtype))
        return g * (middle * (x * (1 / 3) + 0.5) + above)


class Silu(Function):
    """out = x * sigmoid(x);  dx = g * s * (1 + x * (1 - s)) with s = sigmoid(x)"""

    def forward(self, x):
        return (x * np.exp(-np.logaddexp(0, -x))).astype(x.dtype, copy=False)

    def backward(self, g, out):
        x = self.inputs[0]
        s = x.sigmoid()
        return g * s * (1 + x * (1 - s))


class Mish(Function):
    """out = x * t, t = tanh(softplus(x));  dx = g * (t + x * sigmoid(x) * (1 - t**2))"""

    def forward(self, x):
        return (x * np.tanh(np.logaddexp(0, x))).astype(x.dtype, copy=False)

    def backward(self, g, out):
        x = self.inputs[0]
        t = Softplus.apply(x, beta=1.0, threshold=20.0).tanh()
        return g * (t + x * x.sigmoid() * (1 - t * t))


_erf = np.vectorize(math.erf, otypes=[np.float64])


class Erf(Function):
    """out = erf(x);  dx = g * 2/sqrt(pi) * exp(-x**2)"""

    def forward(self, x):
        return _erf(x).astype(x.dtype, copy=False)

    def backward(self, g, out):
        x = self.inputs[0]
        return g * (2 / math.sqrt(math.pi)) * (-(x * x)).exp()


def erf(x: Tensor) -> Tensor:
    return Erf.apply(x)


def gelu(x: Tensor) -> Tensor:
    """Exact GELU, x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2))), built from ops with gradients."""
    return 0.5 * x * (1 + erf(x * (1 / math.sqrt(2))))


def gelu_tanh(x: Tensor) -> Tensor:
    """GELU's tanh approximation, 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))."""
    return 0.5 * x * (1 + (math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)).tanh())


# --------------------------------------------------------------------------------------------
# Copies and casts
# --------------------------------------------------------------------------------------------

class Cast(Function):
    """out = x converted to dtype;  dx = g converted back to x's dtype"""
    uses_inputs = False

    def forward(self, x):
        if self.dtype.kind not in "fiub":
            raise TypeError(f"cannot convert a tensor to dtype {self.dtype}")
        return x.astype(self.dtype)

    def backward(self, g, out):
        x = self.inputs[0]
        return g.to(x.dtype) if x.dtype.kind == "f" else None


class Clone(Function):
    """out = a copy of x;  dx = g"""
    uses_inputs = False

    def forward(self, x):
        return x.copy()

    def backward(self, g, out):
        return g
