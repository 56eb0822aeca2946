"""The op table: each engine ``Function`` (``tinygrad_lite/ops/*.py``) and the ONNX nodes it
becomes, one small function per op, in the order of ``ops/``.

Each function gets the builder ``b`` and the captured ``node`` (its ``inputs``, ``options``,
``input_types`` and result ``dtype``) and returns the ONNX value holding the op's result. The
ONNX ops follow NumPy's semantics closely, so most entries are one node; the differences are
spelled out where they matter: ONNX wants both operands of one type where NumPy promotes, and
sizes that follow the dynamic axes come from ``b.ints`` (see ``builder.py``).
"""

from __future__ import annotations

import numpy as np

from ..ops import elementwise as E
from ..ops import linalg, movement, reduce
from ..ops import nn as N
from .capture import ConstRef, InputRef
from .symbolic import DimExpr

OP_TABLE = {}  # Function class -> function(b, node) -> ONNX value name


def maps(*ops):
    """Decorator: the function translates these engine ops."""
    def register(fn):
        for op in ops:
            OP_TABLE[op] = fn
        return fn
    return register


def _static(node, name: str, value):
    """An option that ONNX needs as a fixed attribute (an axis, a permutation)."""
    flat = value if isinstance(value, (tuple, list)) else [value]
    if any(isinstance(v, DimExpr) for v in flat):
        raise NotImplementedError(f"onnx.export: {node.op.__name__} (at {node.where}): its "
                                  f"option {name}={value} changes with the dynamic axes, but "
                                  f"ONNX needs it fixed")
    return value


# --------------------------------------------------------------------------------------------
# ops/elementwise.py
# --------------------------------------------------------------------------------------------

_BINARY = {E.Add: "Add", E.Sub: "Sub", E.Mul: "Mul", E.Pow: "Pow", E.Maximum: "Max",
           E.Minimum: "Min"}


@maps(*_BINARY)
def binary(b, node):
    """Both operands in the result's dtype: NumPy promotes (int64 + float32), ONNX does not."""
    return b.node(_BINARY[node.op], [b.arg(node, 0, node.dtype), b.arg(node, 1, node.dtype)])


@maps(E.Div)
def div(b, node):
    """int / int is float32 in the engine: NumPy divides in float64, then rounds once."""
    both_int = all(dtype.kind != "f" for dtype, _ in node.input_types)
    compute = np.float64 if both_int else node.dtype
    out = b.node("Div", [b.arg(node, 0, compute), b.arg(node, 1, compute)])
    return b.cast(out, compute, node.dtype)


@maps(E.Where)
def where(b, node):
    return b.node("Where", [b.arg(node, 0), b.arg(node, 1, node.dtype),
                            b.arg(node, 2, node.dtype)])


# x + c, c - x, x * c, x / c with a Python number c: NumPy rounds c to x's dtype first
@maps(E.AddScalar)
def add_scalar(b, node):
    return b.node("Add", [b.arg(node, 0), b.number(node.options["c"], node.dtype)])


@maps(E.RSubScalar)
def rsub_scalar(b, node):
    return b.node("Sub", [b.number(node.options["c"], node.dtype), b.arg(node, 0)])


@maps(E.MulScalar)
def mul_scalar(b, node):
    return b.node("Mul", [b.arg(node, 0), b.number(node.options["c"], node.dtype)])


@maps(E.DivScalar)
def div_scalar(b, node):
    return b.node("Div", [b.arg(node, 0), b.number(node.options["c"], node.dtype)])


@maps(E.PowScalar)
def pow_scalar(b, node):
    """NumPy computes x**2 as x*x and x**0.5 as sqrt(x): the same here, bit for bit."""
    x, c = b.arg(node, 0), node.options["c"]
    if c == 2:
        return b.node("Mul", [x, x])
    if c == 0.5:
        return b.node("Sqrt", [x])
    return b.node("Pow", [x, b.number(c, node.dtype)])


_UNARY = {E.Neg: "Neg", E.Exp: "Exp", E.Log: "Log", E.Sqrt: "Sqrt", E.Sin: "Sin", E.Cos: "Cos",
          E.Tanh: "Tanh", E.Sigmoid: "Sigmoid", E.Relu: "Relu", E.Abs: "Abs", E.Erf: "Erf",
          E.Clone: "Identity"}


@maps(*_UNARY)
def unary(b, node):
    return b.node(_UNARY[node.op], [b.arg(node, 0)])


@maps(E.LeakyRelu)
def leaky_relu(b, node):
    return b.node("LeakyRelu", [b.arg(node, 0)], alpha=float(node.options["slope"]))


@maps(E.Clip)
def clip(b, node):
    """A missing bound (None) is an empty input name in ONNX."""
    low, high = node.options["low"], node.options["high"]
    return b.node("Clip", [b.arg(node, 0, node.dtype),
                           "" if low is None else b.number(low, node.dtype),
                           "" if high is None else b.number(high, node.dtype)])


@maps(E.Sign)
def sign(b, node):
    return b.node("Identity" if node.dtype == np.bool_ else "Sign", [b.arg(node, 0)])


@maps(E.Softplus)
def softplus(b, node):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (ONNX's Softplus has
    neither beta nor the threshold)."""
    x = b.arg(node, 0)
    beta, threshold = node.options["beta"], node.options["threshold"]
    scaled = b.node("Mul", [x, b.number(beta, node.dtype)])
    smooth = b.node("Div", [b.node("Softplus", [scaled]), b.number(beta, node.dtype)])
    linear = b.node("Greater", [scaled, b.number(threshold, node.dtype)])
    return b.node("Where", [linear, x, smooth])


@maps(E.Relu6)
def relu6(b, node):
    return b.node("Clip", [b.arg(node, 0), b.number(0, node.dtype), b.number(6, node.dtype)])


@maps(E.Hardswish)
def hardswish(b, node):
    """x * clip(x + 3, 0, 6) / 6, in the engine's order (ONNX's HardSwish rounds differently)."""
    x, dtype = b.arg(node, 0), node.dtype
    gate = b.node("Clip", [b.node("Add", [x, b.number(3, dtype)]), b.number(0, dtype),
                           b.number(6, dtype)])
    return b.node("Div", [b.node("Mul", [x, gate]), b.number(6, dtype)])


@maps(E.Silu)
def silu(b, node):
    x = b.arg(node, 0)
    return b.node("Mul", [x, b.node("Sigmoid", [x])])


@maps(E.Mish)
def mish(b, node):
    x = b.arg(node, 0)
    return b.node("Mul", [x, b.node("Tanh", [b.node("Softplus", [x])])])


@maps(E.Cast)
def cast(b, node):
    return b.cast(b.arg(node, 0), node.input_types[0][0], node.options["dtype"])


# --------------------------------------------------------------------------------------------
# ops/movement.py
# --------------------------------------------------------------------------------------------

@maps(movement.Reshape)
def reshape(b, node):
    """The target shape may hold sizes read from the inputs (B, T); a literal 0 in it means 0
    (allowzero), not ONNX's default "copy this axis"."""
    shape = node.options["shape"]
    allow_zero = int(any(not isinstance(n, DimExpr) and n == 0 for n in shape))
    return b.node("Reshape", [b.arg(node, 0), b.ints(shape)], allowzero=allow_zero)


@maps(movement.Permute)
def permute(b, node):
    return b.node("Transpose", [b.arg(node, 0)],
                  perm=list(_static(node, "dims", node.options["dims"])))


@maps(movement.Expand)
def expand(b, node):
    return b.node("Expand", [b.arg(node, 0), b.ints(node.options["shape"])])


_INT64_MAX, _INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


@maps(movement.GetItem)
def getitem(b, node):
    """x[index] for an index of ints, slices, None and ``...`` (one Slice, then a Gather per
    int, then one Unsqueeze for the Nones), or of one integer array among slices (a Gather:
    the embedding lookup ``weight[ids]``)."""
    x, ndim = b.arg(node, 0), node.input_types[0][1]
    index = node.options["index"]
    items = list(index) if isinstance(index, tuple) else [index]
    used = sum(1 for item in items if item is not None and item is not Ellipsis)
    at = items.index(Ellipsis) if Ellipsis in items else len(items)
    items[at:at + 1] = [slice(None)] * (ndim - used)  # (appended if there is no ...)
    arrays = [item for item in items if isinstance(item, (InputRef, ConstRef))]
    if arrays and (len(arrays) > 1 or not all(isinstance(item, slice) for item in items
                                              if item is not arrays[0])):
        raise NotImplementedError(
            f"onnx.export: GetItem (at {node.where}): only one index array, among slices, is "
            f"supported; this index mixes arrays with other arrays, ints or None")
    if arrays and b.dtype_of(arrays[0]) == np.bool_:
        raise NotImplementedError(f"onnx.export: GetItem (at {node.where}): a boolean mask "
                                  f"index makes a result whose shape depends on the values")
    starts, ends, axes, steps = [], [], [], []
    picks, new_axes = [], []  # (input axis, int or array) to Gather; where the Nones go
    axis = out_axis = 0
    for item in items:
        if item is None:
            new_axes.append(out_axis)
            out_axis += 1
            continue
        if isinstance(item, slice):
            if item != slice(None):
                step = 1 if item.step is None else item.step
                starts.append(item.start if item.start is not None else
                              (0 if step > 0 else _INT64_MAX))
                ends.append(item.stop if item.stop is not None else
                            (_INT64_MAX if step > 0 else _INT64_MIN))
                axes.append(axis)
                steps.append(step)
            out_axis += 1
        else:  # an int, a position that follows the dynamic axes, or an index array
            picks.append((axis, item))
        axis += 1
    if starts:
        x = b.node("Slice", [x, b.ints(starts), b.ints(ends), b.ints(axes), b.ints(steps)])
    for axis, item in reversed(picks):  # the last axis first: earlier axes keep their number
        position = b.value(item) if isinstance(item, (InputRef, ConstRef)) else b.scalar(item)
        x = b.node("Gather", [x, position], axis=axis)
    if new_axes:
        x = b.node("Unsqueeze", [x, b.ints(new_axes)])
    return x


@maps(movement.Gather)
def gather(b, node):
    """take_along_axis is GatherElements, once the index is broadcast over x's other axes
    (NumPy broadcasts it, ONNX does not): Expand to x's shape with 1 at ``dim``."""
    x, ndim = b.arg(node, 0), node.input_types[0][1]
    dim = _static(node, "dim", node.options["dim"]) % ndim
    pieces = ([b.node("Shape", [x], start=0, end=dim)] if dim > 0 else []) + [b.ints([1])] + (
        [b.node("Shape", [x], start=dim + 1)] if dim + 1 < ndim else [])
    shape = pieces[0] if len(pieces) == 1 else b.node("Concat", pieces, axis=0)
    index = b.node("Expand", [b.value(node.options["index"]), shape])
    return b.node("GatherElements", [x, index], axis=dim)


@maps(movement.Triangle)
def triangle(b, node):
    return b.node("Trilu", [b.arg(node, 0), b.scalar(node.options["diagonal"])],
                  upper=int(node.options["upper"]))


@maps(movement.Cat)
def cat(b, node):
    parts = [b.arg(node, i, node.dtype) for i in range(len(node.inputs))]
    return b.node("Concat", parts, axis=_static(node, "axis", node.options["axis"]))


# --------------------------------------------------------------------------------------------
# ops/reduce.py
# --------------------------------------------------------------------------------------------

def _reduce(b, node, op_type: str, x: str) -> str:
    """ONNX's reductions take their axes as an input from opset 18 (ReduceSum from 13), as an
    attribute before; no axes means every axis."""
    axis, keepdims = node.options["axis"], int(node.options["keepdims"])
    if axis == ():  # a 0-d tensor: nothing to reduce
        return b.node("Identity", [x])
    if axis is None:
        return b.node(op_type, [x], keepdims=keepdims)
    axes = list(_static(node, "axis", axis))
    if op_type == "ReduceSum" or b.opset >= 18:
        return b.node(op_type, [x, b.ints(axes)], keepdims=keepdims)
    return b.node(op_type, [x], axes=axes, keepdims=keepdims)


@maps(reduce.Sum)
def sum_(b, node):
    """NumPy sums small ints and bools as int64: the input is cast to the result's dtype."""
    return _reduce(b, node, "ReduceSum", b.arg(node, 0, node.dtype))


@maps(reduce.Max)
def max_(b, node):
    return _reduce(b, node, "ReduceMax", b.arg(node, 0))


@maps(reduce.LogSumExp)
def logsumexp(b, node):
    return _reduce(b, node, "ReduceLogSumExp", b.arg(node, 0))


# --------------------------------------------------------------------------------------------
# ops/linalg.py and ops/nn.py
# --------------------------------------------------------------------------------------------

@maps(linalg.MatMul)
def matmul(b, node):
    return b.node("MatMul", [b.arg(node, 0), b.arg(node, 1)])


@maps(N.Softmax)
def softmax(b, node):
    return b.node("Softmax", [b.arg(node, 0)], axis=_static(node, "axis", node.options["axis"]))


@maps(N.LogSoftmax)
def log_softmax(b, node):
    return b.node("LogSoftmax", [b.arg(node, 0)],
                  axis=_static(node, "axis", node.options["axis"]))


@maps(N.LayerNormOp)
def layer_norm(b, node):
    """The engine normalises over the last axes; ONNX's LayerNormalization over the axes from
    ``axis`` on -- the same thing."""
    axes = _static(node, "axes", node.options["axes"])
    return b.node("LayerNormalization", [b.arg(node, 0), b.arg(node, 1), b.arg(node, 2)],
                  axis=int(axes[0]), epsilon=float(node.options["eps"]))


@maps(N.LinearOp)
def linear(b, node):
    """x @ Wᵀ + b with W stored as the model has it, (out_features, in_features)."""
    weight_t = b.node("Transpose", [b.arg(node, 1)], perm=[1, 0])
    return b.node("Add", [b.node("MatMul", [b.arg(node, 0), weight_t]), b.arg(node, 2)])


SUPPORTED_OPS = sorted(op.__name__ for op in OP_TABLE)
