"""Reductions: sum, max, logsumexp (as Functions) and mean, var (built from them).

A reduction maps many inputs to one output, so its backward copies each output gradient back
to every input that contributed: reshape ``g`` to the kept-dims shape, then broadcast it.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..tensor import Tensor


def normalize_axis(axis, ndim: int, op: str):
    """None, or a sorted tuple of non-negative axes; a clear error for an axis out of range."""
    if axis is None:
        return None
    if isinstance(axis, (int, np.integer)):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {a!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} "
                             f"dimension(s)")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def _kept_shape(shape: tuple, axis) -> tuple:
    """The output shape with keepdims=True: reduced axes become 1."""
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if i in axis else n for i, n in enumerate(shape))


class Sum(Function):
    """out = sum of x over axis;  dx = g broadcast back to x's shape"""
    uses_inputs = False

    def forward(self, x):
        self.in_shape = x.shape
        return np.asarray(x.sum(axis=self.axis, keepdims=self.keepdims))

    def backward(self, g, out):
        return g.reshape(_kept_shape(self.in_shape, self.axis)).expand(self.in_shape)


class Max(Function):
    """out = max of x over axis;  dx = g at the positions of the maximum (ties share it equally)"""
    uses_output = True

    def forward(self, x):
        if x.size == 0:
            raise ValueError(f"max: cannot reduce an empty tensor of shape {x.shape}")
        return np.asarray(x.max(axis=self.axis, keepdims=self.keepdims))

    def backward(self, g, out):
        x = self.inputs[0]
        kept = _kept_shape(x.shape, self.axis)
        is_max = x.data == out.data.reshape(kept)
        share = is_max / is_max.sum(axis=self.axis, keepdims=True)
        return g.reshape(kept).expand(x.shape) * Tensor._make(share.astype(g.dtype))


class LogSumExp(Function):
    """out = log(sum(exp(x))) over axis;  dx = g * exp(x - out)  (= g * softmax(x))"""
    uses_output = True

    def forward(self, x):
        if x.size == 0:
            raise ValueError(f"logsumexp: cannot reduce an empty tensor of shape {x.shape}")
        shift = x.max(axis=self.axis, keepdims=True)
        shift = np.where(np.isfinite(shift), shift, 0)  # all -inf row: log(0) = -inf, not NaN
        out = np.log(np.exp(x - shift).sum(axis=self.axis, keepdims=True)) + shift
        if not self.keepdims:
            out = out.reshape(tuple(n for i, n in enumerate(x.shape)
                                    if self.axis is not None and i not in self.axis))
        return np.asarray(out)

    def backward(self, g, out):
        x = self.inputs[0]
        kept = _kept_shape(x.shape, self.axis)
        return g.reshape(kept) * (x - out.reshape(kept)).exp()


def mean(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """sum / count: the gradient of each input is g / count."""
    axis = normalize_axis(axis, x.ndim, "mean")
    count = x.data.size if axis is None else int(np.prod([x.shape[a] for a in axis]))
    if x.dtype.kind != "f":
        x = x.float()
    return Sum.apply(x, axis=axis, keepdims=keepdims) * (1.0 / count if count else float("nan"))


def var(x: Tensor, axis=None, keepdims: bool = False, correction: int = 1) -> Tensor:
    """sum((x - mean)^2) / (count - correction)."""
    axis = normalize_axis(axis, x.ndim, "var")
    count = x.data.size if axis is None else int(np.prod([x.shape[a] for a in axis]))
    if x.dtype.kind != "f":  # as in mean: integers give float32 (not int64 - float32 = float64)
        x = x.float()
    centered = x - mean(x, axis, keepdims=True)
    denominator = max(count - correction, 0)
    return Sum.apply(centered * centered, axis=axis, keepdims=keepdims) * (
        1.0 / denominator if denominator else float("nan"))


def arg_reduce(x: Tensor, fn, axis, keepdims: bool, op: str) -> Tensor:
    """argmax/argmin: integer positions, so there is no gradient."""
    if x.data.size == 0:
        raise ValueError(f"{op}: cannot reduce an empty tensor of shape {x.shape}")
    if axis is not None:
        axis = normalize_axis(axis, x.ndim, op)[0]
    return Tensor._make(np.asarray(fn(x.data, axis=axis, keepdims=keepdims), dtype=np.int64))
