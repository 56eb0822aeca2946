"""Reductions: sum, max, logsumexp (as Functions) and mean, var (built from them); max/min along
one dim with their indices, and topk (values picked with ``gather``, so the gradient goes back to
exactly the positions picked).

A reduction maps many inputs to one output, so its backward copies each output gradient back
to every input that contributed: reshape ``g`` to the kept-dims shape, then broadcast it.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..autograd import Function
from ..checks import check_dim, check_flag
from ..tensor import Tensor
from .movement import gather

# What max(dim), min(dim) and topk return, as torch.return_types.max/min/topk: a tuple
# (values, indices) whose fields also have names, so both `x.max(1)[0]` and `.values` work.
MaxResult = namedtuple("max", ("values", "indices"))
MinResult = namedtuple("min", ("values", "indices"))
TopkResult = namedtuple("topk", ("values", "indices"))


def normalize_axis(axis, ndim: int, op: str):
    """None, or a sorted tuple of non-negative dims; clear errors with PyTorch's exception
    classes (IndexError for a dim out of range, RuntimeError for a repeated one)."""
    if axis is None:
        return None
    if isinstance(axis, (int, np.integer)):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {axis!r}")
    out = [check_dim(op, a, ndim) for a in axes]
    if ndim == 0:  # as in torch, a 0-d tensor has dim 0 (and -1): reducing it changes nothing
        return ()
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}: a dim appears multiple times in {axis!r}")
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


def correction_arg(op: str, unbiased, correction) -> float:
    """PyTorch's two spellings of Bessel's correction: ``unbiased`` (True -> 1, False -> 0) or
    ``correction`` (the number subtracted from the count); the default is 1, as in torch."""
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}() got both unbiased={unbiased!r} and correction={correction!r}; "
                        f"pass only one (unbiased=False is correction=0)")
    if unbiased is not None:
        if not isinstance(unbiased, (bool, np.bool_)):
            raise TypeError(f"{op}(): unbiased must be a bool, got {unbiased!r} (the keep-dims "
                            f"flag is keepdim=, the third argument)")
        return 1 if unbiased else 0
    if correction is None:
        return 1
    if isinstance(correction, (bool, np.bool_)) or not isinstance(
            correction, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}(): correction must be an int, got {correction!r}")
    if not float(correction).is_integer():  # (inf and NaN too) PyTorch documents an int
        raise ValueError(f"{op}(): correction must be a whole number, got {correction!r}")
    return int(correction)


def var(x: Tensor, axis=None, keepdims: bool = False, correction: float = 1) -> Tensor:
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
        axis = _one_dim(x, axis, op)  # one int, as in torch (NumPy would take a tuple too)
        if x.ndim == 0:
            return Tensor._make(np.zeros((), np.int64))
    return Tensor._make(np.asarray(fn(x.data, axis=axis, keepdims=keepdims), dtype=np.int64))


def _one_dim(x: Tensor, dim, op: str) -> int:
    """The single dimension that max(dim), min(dim) and topk work along (an int, as in torch)."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}(): dim must be an int, got {dim!r}" + (
            " (for several dims use amax/amin)" if op in ("max", "min") else ""))
    return normalize_axis(dim, max(x.ndim, 1), op)[0]


def max_min_along(x: Tensor, dim, keepdim: bool, largest: bool):
    """max(dim) / min(dim): the extreme values along ``dim`` and their positions. The gradient goes
    to the one position returned in ``indices`` (as in PyTorch), not shared among ties."""
    op = "max" if largest else "min"
    d = _one_dim(x, dim, op)
    if x.ndim == 0:  # a 0-d tensor is its own max along dim 0 (or -1), at index 0
        return (MaxResult if largest else MinResult)(x, Tensor._make(np.zeros((), np.int64)))
    if x.shape[d] == 0:
        raise IndexError(f"{op}(): cannot reduce dimension {d} of size 0 (shape {x.shape})")
    index = (np.argmax if largest else np.argmin)(x.data, axis=d, keepdims=True)
    values = gather(x, d, index)
    if not keepdim:
        values, index = values.squeeze(d), index.squeeze(d)
    return (MaxResult if largest else MinResult)(values, Tensor._make(index))


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """The ``k`` largest (or smallest) values along ``dim`` and their indices, in order (largest
    first, or smallest first with ``largest=False``). NaN counts as larger than every number, as
    in PyTorch. ``sorted=False`` is accepted and still sorts (torch leaves that order open)."""
    d = _one_dim(x, dim, "topk")
    largest, sorted = check_flag("topk", "largest", largest), check_flag("topk", "sorted", sorted)
    length = x.shape[d] if x.ndim else 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"topk(): k must be an int, got {k!r}")
    if not 0 <= k <= length:
        raise RuntimeError(f"topk(): selected index k={k} is out of range for dimension {d} of "
                           f"size {length} (shape {x.shape})")
    if x.ndim == 0:
        return TopkResult(x if k else x.reshape(1)[:0],
                          Tensor._make(np.zeros((), np.int64) if k else np.zeros(0, np.int64)))
    order = np.argsort(x.data, axis=d, kind="stable")  # ascending, NaN last
    if largest:
        order = np.flip(order, axis=d)
    index = np.ascontiguousarray(np.take(order, np.arange(k), axis=d))
    return TopkResult(gather(x, d, index), Tensor._make(index.astype(np.int64, copy=False)))
