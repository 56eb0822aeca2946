"""Operands on their way to C: the input checks every kernel shares, and the pointers C gets.

C has no bounds checks, so nothing reaches it unchecked: these helpers turn inputs into float32
or float64 arrays in native byte order (or raise an error naming the function, the argument and
the value), make aligned C-contiguous copies of arrays C cannot read as they are, and hand out
pointers to memory the checks have covered.
"""

from __future__ import annotations

import numpy as np

from . import runtime

# The loaded C module's FFI object. Assigned, not imported by name (`from .runtime import _ffi`):
# CPython compiles `name.method(...)` on an imported name as an attribute load and a call (it
# guesses the name is a module), which here costs ~50 ns more per _ptr than a method call.
_ffi = runtime._ffi


# --------------------------------------------------------------------------------------------
# Input checks shared by both backends
# --------------------------------------------------------------------------------------------

def _as_array(x, op: str, name: str) -> np.ndarray:
    """np.asarray(x), with NumPy's own complaints (e.g. ragged nested lists) turned into an
    error that names the function and the argument."""
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as e:
        raise TypeError(f"{op}: {name} must be an array (or nested lists of numbers of one "
                        f"shape), got a {type(x).__name__} NumPy cannot convert: {e}") from None


def _real_number(x, op: str, name: str) -> float:
    """x as a Python float if it is a real number (not a bool or a string), else a TypeError."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer,
                                                              np.floating)):
        raise TypeError(f"{op}: {name} must be a real number, got {x!r} of type "
                        f"{type(x).__name__}")
    return float(x)


def _float_array(x, op: str, name: str) -> np.ndarray:
    """x as an ndarray of float32 or float64 in native byte order, or a TypeError."""
    if not isinstance(x, np.ndarray):
        x = _as_array(x, op, name)
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise TypeError(f"{op}: {name} must have dtype float32 or float64, got {x.dtype} "
                        f"(shape {x.shape})")
    if not x.dtype.isnative:  # e.g. big-endian data read from a file: C reads native order
        x = x.astype(x.dtype.newbyteorder("="))
    return x


def _same_dtype(op: str, **arrays: np.ndarray) -> None:
    (name0, a0), *rest = arrays.items()
    for name, a in rest:
        if a.dtype != a0.dtype:
            raise TypeError(f"{op}: operands must have the same dtype, got {name0}: {a0.dtype} "
                            f"{a0.shape} and {name}: {a.dtype} {a.shape} (convert one with "
                            f".astype first)")


# --------------------------------------------------------------------------------------------
# Pointers and strides for the C calls
# --------------------------------------------------------------------------------------------

_CTYPE = {np.dtype(np.float32): "float *", np.dtype(np.float64): "double *"}
_CARRAY = {np.dtype(np.float32): "float[]", np.dtype(np.float64): "double[]"}


def _ptr(x: np.ndarray, offset_bytes: int = 0):
    """C pointer to x's first element (plus a byte offset). Only for arrays checked above:
    the address of a strided view is valid for exactly the elements its strides reach.

    (ffi.from_buffer is the fast way for contiguous memory -- a transposed view x.T has the same
    first element as the contiguous x; other views go through their address, which is slower.)
    """
    if offset_bytes == 0:
        if x.flags.c_contiguous:
            return _ffi.from_buffer(_CARRAY[x.dtype], x)
        if x.flags.f_contiguous:
            return _ffi.from_buffer(_CARRAY[x.dtype], x.T)
    return _ffi.cast(_CTYPE[x.dtype], x.ctypes.data + offset_bytes)


def _aligned_copy(x: np.ndarray) -> np.ndarray:
    """A fresh C-contiguous, aligned copy. (Not np.ascontiguousarray: that returns an unaligned
    but contiguous array unchanged, and C must not read a float from an odd address.)"""
    return x.copy(order="C")


def _collapse_batch(shape: tuple, *strides: tuple) -> list:
    """Merge batch dimensions that can be walked with one stride per operand.

    Returns [(size, (stride_op0, stride_op1, ...)), ...] from outer to inner. Dimensions of
    size 1 are dropped; two neighbours merge when, for every operand, the outer stride equals
    inner stride * inner size (broadcast dimensions have stride 0 and merge with each other).
    """
    dims = [(size, tuple(s[i] for s in strides)) for i, size in enumerate(shape) if size != 1]
    merged: list = []
    for size, st in dims:
        if merged:
            psize, pst = merged[-1]
            if all(p == s * size for p, s in zip(pst, st)):
                merged[-1] = (psize * size, st)
                continue
        merged.append((size, st))
    return merged
