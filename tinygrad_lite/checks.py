"""Argument checks shared by the whole package: one checker per kind of argument (a number in a
range, a scalar operand, a True/False flag, a Tensor, a floating-point Tensor, a dtype, a shape,
one dim of a tensor), each raising PyTorch's exception class (TypeError, ValueError, IndexError)
with a message that names the function, the argument and the value -- so that a bad argument
fails where it is given, with a message that says what to change, not deep inside NumPy or
thousands of steps later as a NaN loss.

The optimizers and schedules use ``check_number`` / ``check_flag`` for their hyperparameters;
the Tensor methods, the factories (``tg.zeros``, ``tg.arange``, ...) and ``nn.functional`` use
them and the others. (The ``dim``/``axis`` and ``keepdim``/``keepdims`` arguments of the ops,
which need more than a value check, are resolved in ``ops/args.py``.)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

# Sizes past this are refused before NumPy sees them (NumPy's own errors name no function).
_MAX_SIDE = np.iinfo(np.intp).max


def check_number(owner: str, name: str, value, low: float = 0.0, high: float = math.inf, *,
                 low_open: bool = False, high_open: bool = False, integer: bool = False):
    """``value`` as a float (an int if ``integer``), after checking that it is a real number
    (not a bool or a string), finite, and in the interval from ``low`` to ``high`` (closed
    unless ``low_open`` / ``high_open``). Raises TypeError / ValueError naming the owner (e.g.
    "AdamW"), the argument and the value."""
    opening = "(" if low_open else "["
    closing = ")" if high_open or high == math.inf else "]"
    def bound(b) -> str:  # integers in full (2**64 as 1.84467e+19 would hide the limit)
        return str(int(b)) if integer and math.isfinite(b) else f"{b:g}"
    interval = f"{opening}{bound(low)}, {bound(high)}{closing}"
    kind = "an integer" if integer else "a finite number"
    wanted = f"{name} must be {kind} in {interval}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or (
            integer and not isinstance(value, numbers.Integral)):
        raise TypeError(f"{owner}: invalid {name}={value!r} ({type(value).__name__}): {wanted}")
    number = int(value) if integer else float(value)
    too_low = number <= low if low_open else number < low
    too_high = number >= high if high_open else number > high
    if not math.isfinite(number) or too_low or too_high:
        raise ValueError(f"{owner}: invalid {name}={value!r}: {wanted}")
    return number


def check_scalar(owner: str, name: str, value):
    """``value`` unchanged, after checking that it is a real number usable as an operand (alpha,
    a clip bound, a slope): an int, float or bool, NumPy's included, NaN and inf too -- as in
    arithmetic. Not a str, None, complex or array. (A setting that must be finite and in a range
    goes through ``check_number``.)"""
    if not isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
        raise TypeError(f"{owner}: invalid {name}={value!r:.40}: {name} must be a real number")
    return value


def check_flag(owner: str, name: str, value) -> bool:
    """``value`` as a bool, after checking that it is one (keepdim, requires_grad, create_graph,
    ...; as in PyTorch: the string "no" would otherwise count as True)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: invalid {name}={value!r}: {name} must be True or False")
    return bool(value)


def check_tensor(owner: str, name: str, value):
    """``value``, after checking that it is a Tensor (a list or array must be wrapped first:
    an operation would otherwise fail later with an AttributeError that names nothing)."""
    from .tensor import Tensor  # imported here so that tensor.py may use this module too
    if not isinstance(value, Tensor):
        raise TypeError(f"{owner}: argument {name!r} must be a Tensor, not "
                        f"{type(value).__name__} (wrap it with tg.tensor(...))")
    return value


def check_float(owner: str, name: str, value):
    """``value``, after checking that it is a tensor of floating-point dtype (softmax, losses,
    layer norm: no integer math)."""
    if value.dtype.kind != "f":
        raise TypeError(f"{owner}: {name} must be a floating-point tensor, got dtype "
                        f"{value.dtype} (convert with .float())")
    return value


def check_dtype(owner: str, dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype, after checking that it names one that tensors can hold
    (floating point, integer or bool: no complex, strings or objects, nor "float99" or 5)."""
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError):
        resolved = None
    if resolved is None or resolved.kind not in "fiub" or dtype is None:
        raise TypeError(f"{owner}: invalid dtype={dtype!r}: tensors hold floating-point, "
                        f"integer or bool data (e.g. tg.float32, tg.int64, tg.bool)")
    return resolved


def check_shape(owner: str, shape) -> tuple:
    """The sizes of a factory call, ``f(2, 3)`` or ``f((2, 3))`` or ``f([2, 3])``, as a tuple of
    ints >= 0 (as torch: a float, a negative or a string is refused)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    sides = tuple(shape)
    for side in sides:
        if isinstance(side, (bool, np.bool_)) or not isinstance(side, numbers.Integral):
            raise TypeError(f"{owner}: size must be ints, got {side!r} "
                            f"({type(side).__name__}) in {sides}")
        if not 0 <= side <= _MAX_SIDE:
            raise ValueError(f"{owner}: sizes must be non-negative (and fit in memory), got "
                             f"{side} in {sides}")
    if math.prod(sides) > _MAX_SIDE:
        raise ValueError(f"{owner}: a tensor of size {sides} has too many elements to exist")
    return tuple(int(side) for side in sides)


def check_dim(owner: str, dim, ndim: int, name: str = "dim") -> int:
    """One dimension of a tensor with ``ndim`` dims, as a non-negative int (negative counts from
    the end); ``name`` is the argument that gave it (dim, start_dim, dim0, ...). As in PyTorch, a
    0-d tensor has dims 0 and -1. TypeError for a non-int, IndexError "Dimension out of range"
    (PyTorch's words) for an int out of range."""
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{owner}(): {name} must be an int, got {dim!r}")
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise IndexError(f"{owner}(): Dimension out of range (expected to be in range of "
                         f"[{-size}, {size - 1}], but got {dim}): {name}={dim} with {ndim} "
                         f"dimension(s) to choose from")
    return int(dim) % size
