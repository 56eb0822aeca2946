"""Sizes that follow the dynamic axes, found by running the model at several sizes.

The engine records plain numbers: a GPT run on 2 sequences of 5 tokens records
``reshape(2, 5, 4, 8)``, a causal mask of shape (5, 5) and the slice ``pe[:5]`` of its
positional table. An ONNX file that must take any batch and any length has to say which of
those numbers *are* the batch and the length. So the model is traced several times
(``TracePlan``): once at the example sizes, once more per dynamic dimension with only that one
changed, and once with every dimension changed (and the input values shuffled) as a check. A
number that stays put is a constant; one that moves with a dimension is fitted as a formula in
it (``DimExpr``: ``T``, ``B*T``, ``T - 1``, ``4*T``), and the check trace must agree with every
formula. Arrays made outside the graph (masks) are fitted the same way by ``fit_constant``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class CannotExpress(ValueError):
    """A recorded number or array that no formula in the dynamic dimensions explains."""


@dataclass(frozen=True)
class DimExpr:
    """``offset + scale * (product of the named dimensions)``: a size, slice bound or index that
    depends on the inputs' dynamic axes (``T`` is DimExpr(0, 1, ("T",)), ``B*T`` is
    DimExpr(0, 1, ("B", "T")), ``T - 1`` is DimExpr(-1, 1, ("T",)))."""
    offset: int
    scale: int
    dims: tuple

    def value(self, sizes: dict) -> int:
        return self.offset + self.scale * math.prod(sizes[d] for d in self.dims)

    def __str__(self) -> str:
        text = "*".join(self.dims)
        if self.scale != 1:
            text = f"{self.scale}*{text}"
        return text if self.offset == 0 else f"{text}{self.offset:+d}"


@dataclass(frozen=True)
class Reciprocal:
    """``1 / count``: a float option such as mean's ``1/T`` (in float64, as Python computes it)."""
    count: DimExpr


def value_at(entry, sizes: dict):
    """What a fitted entry (a number, DimExpr or Reciprocal) is at the given sizes."""
    if isinstance(entry, DimExpr):
        return entry.value(sizes)
    if isinstance(entry, Reciprocal):
        return 1.0 / entry.count.value(sizes)
    return entry


# --------------------------------------------------------------------------------------------
# The traces
# --------------------------------------------------------------------------------------------

def other_sizes(n: int) -> list:
    """Two sizes other than ``n`` for the extra traces: smaller ones when possible (a model may
    refuse longer inputs, e.g. past its context length), and not 1 (a size-1 axis broadcasts,
    so it may run different code)."""
    return [s for s in (n - 1, n - 2, n + 1, n + 2, n + 3) if s >= 2][:2]


class TracePlan:
    """The sizes of every trace: ``sizes[0]`` the example's, ``sizes[1 + i]`` the example's with
    only dimension ``names[i]`` changed, ``sizes[-1]`` (the check) with all of them changed."""

    def __init__(self, base: dict):
        self.names = list(base)
        alternatives = {name: other_sizes(n) for name, n in base.items()}
        self.sizes = [dict(base)]
        self.sizes += [{**base, name: alternatives[name][0]} for name in self.names]
        self.sizes.append({name: alternatives[name][1] for name in self.names})

    def describe(self, i: int) -> str:
        what = ", ".join(f"{name}={n}" for name, n in self.sizes[i].items()) or "the same sizes"
        return what + (" with the input values shuffled" if i == len(self.sizes) - 1 else "")


# --------------------------------------------------------------------------------------------
# Fitting numbers
# --------------------------------------------------------------------------------------------

def fit_int(values: list, plan: TracePlan):
    """The int, or the DimExpr, that gives ``values[i]`` at ``plan.sizes[i]`` for every trace."""
    base, names, sizes = values[0], plan.names, plan.sizes
    moved = [name for i, name in enumerate(names) if values[1 + i] != base]
    if not moved:
        expr = base
    elif len(moved) == 1:  # offset + scale * n: two traces give both
        name = moved[0]
        i = names.index(name)
        scale, rest = divmod(values[1 + i] - base, sizes[1 + i][name] - sizes[0][name])
        if rest:
            raise CannotExpress(f"{values} is not a whole multiple of {name} plus a constant")
        expr = DimExpr(base - scale * sizes[0][name], scale, (name,))
    else:  # scale * (product of the dimensions), e.g. the B*T rows of a flattened batch
        scale, rest = divmod(base, math.prod(sizes[0][n] for n in moved))
        if rest or scale == 0:
            raise CannotExpress(f"{values} is not a multiple of {'*'.join(moved)}")
        expr = DimExpr(0, scale, tuple(moved))
    for value, at in zip(values, sizes):  # every trace, the check trace too, must agree
        if value_at(expr, at) != value:
            raise CannotExpress(f"{values} follows no formula offset + scale * "
                                f"(product of {', '.join(names) or 'no dimension'})")
    return expr


def _same_number(a, b) -> bool:
    return a == b or (a != a and b != b)  # NaN options (masked_fill's value) are equal too


def fit_float(values: list, plan: TracePlan):
    """A float option: the same in every trace, or ``1 / count`` of a count that fits
    (``mean`` multiplies by ``1.0 / T``)."""
    if all(_same_number(v, values[0]) for v in values):
        return values[0]
    counts = [round(1.0 / v) if v and math.isfinite(1.0 / v) else None for v in values]
    if None in counts or any(1.0 / n != v for n, v in zip(counts, values)):
        raise CannotExpress(f"the values {values} are neither one constant nor 1/size")
    return Reciprocal(fit_int(counts, plan))


# --------------------------------------------------------------------------------------------
# Fitting arrays made outside the graph (masks, constants)
# --------------------------------------------------------------------------------------------

@dataclass
class StaticConstant:
    """The same array in every trace: stored as it is."""
    array: np.ndarray


@dataclass
class FilledConstant:
    """Every element ``value``, in a shape that follows the dynamic axes."""
    value: object
    shape: tuple
    dtype: np.dtype


@dataclass
class TriangleConstant:
    """A mask over the last two axes (rows i, columns j): ``inside`` where ``j - i >= k``
    (upper) or ``j - i <= k`` (lower), else ``outside`` -- e.g. the causal mask
    ``np.triu(ones((T, T), bool), 1)`` is upper, k = 1, True inside, False outside."""
    upper: bool
    k: int
    inside: object
    outside: object
    shape: tuple
    dtype: np.dtype


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def triangle_mask(shape: tuple, upper: bool, k: int) -> np.ndarray:
    """Boolean (..., rows, cols): True where column - row >= k (upper) or <= k (lower)."""
    rows, cols = shape[-2:]
    diff = np.arange(cols)[None, :] - np.arange(rows)[:, None]
    return np.broadcast_to(diff >= k if upper else diff <= k, shape)


def _fit_triangle(arrays: list):
    """(upper, k, inside, outside) if every array is the same triangular two-valued mask."""
    two_valued = [a for a in arrays if a.ndim >= 2 and len(np.unique(a)) == 2]
    if not two_valued or len(np.unique(np.concatenate([a.ravel() for a in arrays]))) > 2:
        return None
    sample = two_valued[0]
    rows, cols = sample.shape[-2:]
    diff = np.broadcast_to(np.arange(cols)[None, :] - np.arange(rows)[:, None], sample.shape)
    low, high = np.unique(sample)
    for inside, outside in ((high, low), (low, high)):
        chosen = diff[sample == inside]
        for upper, k in ((True, int(chosen.min())), (False, int(chosen.max()))):
            if all(_same_array(a, np.where(triangle_mask(a.shape, upper, k), inside, outside)
                               .astype(a.dtype)) for a in arrays):
                return upper, k, inside, outside
    return None


def fit_constant(arrays: list, plan: TracePlan):
    """What an array made outside the graph is, given its value in every trace: a
    StaticConstant, FilledConstant or TriangleConstant (raises CannotExpress otherwise)."""
    first = arrays[0]
    if any(a.dtype != first.dtype or a.ndim != first.ndim for a in arrays):
        raise CannotExpress(f"its dtype or number of dimensions changes: "
                            f"{[f'{a.dtype}{a.shape}' for a in arrays]}")
    shape = tuple(fit_int([a.shape[i] for a in arrays], plan) for i in range(first.ndim))
    if all(_same_array(a, first) for a in arrays):
        return StaticConstant(first)
    if all(a.size for a in arrays):
        value = first.flat[0]
        if all(_same_array(a, np.full_like(a, value)) for a in arrays):
            return FilledConstant(value, shape, first.dtype)
        triangle = _fit_triangle(arrays)
        if triangle is not None:
            return TriangleConstant(*triangle, shape, first.dtype)
    raise CannotExpress("its values change with the input sizes or values, and it is neither "
                        "filled with one value nor a triangular mask")
