"""The row kernels, over the last axis: softmax, log_softmax, their backward passes, and the
fused softmax-cross-entropy."""

from __future__ import annotations

import operator

import numpy as np

from ..checks import check_flag
from . import runtime  # runtime._backend and runtime._num_threads change: read at call time
from .memory import _empty
from .operands import _aligned_copy, _as_array, _collapse_batch, _float_array, _ptr, _same_dtype
from .reference import (reference_cross_entropy, reference_log_softmax,
                        reference_log_softmax_backward, reference_softmax,
                        reference_softmax_backward)

_ffi, _lib = runtime._ffi, runtime._lib  # assigned, not imported: see operands.py


# --------------------------------------------------------------------------------------------
# Public kernel API: softmax family
# --------------------------------------------------------------------------------------------

def _rows_layout(x: np.ndarray):
    """View x (..., cols) as rows x cols with one row stride, for the row kernels.

    Returns (array, rows, cols, ld): array is x itself when its rows are unit-stride and evenly
    spaced (e.g. a slice x[:, :k] or a C-contiguous array), else a C-contiguous copy.
    """
    cols = x.shape[-1]
    rows = x.size // cols if cols else 0
    if x.flags.c_contiguous and x.flags.aligned:  # the common case
        return x, rows, cols, cols
    e = x.itemsize
    if x.flags.aligned and (cols == 1 or x.strides[-1] == e):
        groups = _collapse_batch(x.shape[:-1], x.strides[:-1])
        if not groups:
            return x, rows, cols, cols
        if len(groups) == 1:
            s = groups[0][1][0]
            if s % e == 0 and s >= cols * e:
                return x, rows, cols, s // e
    x = _aligned_copy(x)
    return x, rows, cols, cols


def _softmax_input(x, op: str) -> np.ndarray:
    x = _float_array(x, op, "x")
    if x.ndim == 0:
        raise ValueError(f"{op}: needs at least one dimension (it works over the last axis), "
                         f"got a 0-d array")
    return x


def _row_forward(x, op: str, c_name: str, reference):
    x = _softmax_input(x, op)
    if x.size == 0:
        return np.empty(x.shape, dtype=x.dtype)
    if runtime._backend == "numpy":
        return reference(x)
    xv, rows, cols, ldx = _rows_layout(x)
    y = _empty(x.shape, x.dtype)
    suffix = "_f32" if x.dtype == np.float32 else "_f64"
    getattr(_lib, c_name + suffix)(_ptr(xv), ldx, _ptr(y), rows, cols, runtime._num_threads)
    return y


def _row_backward(y, dy, op: str, c_name: str, reference):
    y = _softmax_input(y, op)
    dy = _float_array(dy, op, "dy")
    _same_dtype(op, y=y, dy=dy)
    if y.shape != dy.shape:
        raise ValueError(f"{op}: y and dy must have the same shape, got {y.shape} and "
                         f"{dy.shape}")
    if y.size == 0:
        return np.empty(y.shape, dtype=y.dtype)
    if runtime._backend == "numpy":
        return reference(y, dy)
    yv, rows, cols, ldy = _rows_layout(y)
    dv, _, _, ldd = _rows_layout(dy)
    dx = _empty(y.shape, y.dtype)
    suffix = "_f32" if y.dtype == np.float32 else "_f64"
    getattr(_lib, c_name + suffix)(_ptr(yv), ldy, _ptr(dv), ldd, _ptr(dx), rows, cols,
                                   runtime._num_threads)
    return dx


def softmax(x: np.ndarray) -> np.ndarray:
    """softmax over the last axis (any leading shape, float32/float64)."""
    return _row_forward(x, "softmax", "tgl_softmax", reference_softmax)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """log_softmax over the last axis (any leading shape, float32/float64)."""
    return _row_forward(x, "log_softmax", "tgl_log_softmax", reference_log_softmax)


def softmax_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Given y = softmax(x) and dy = dL/dy: dx = y * (dy - sum(dy * y)) over the last axis."""
    return _row_backward(y, dy, "softmax_backward", "tgl_softmax_backward",
                         reference_softmax_backward)


def log_softmax_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Given y = log_softmax(x) and dy: dx = dy - exp(y) * sum(dy) over the last axis."""
    return _row_backward(y, dy, "log_softmax_backward", "tgl_log_softmax_backward",
                         reference_log_softmax_backward)


# --------------------------------------------------------------------------------------------
# Public kernel API: fused softmax-cross-entropy
# --------------------------------------------------------------------------------------------

def cross_entropy(logits: np.ndarray, targets: np.ndarray, ignore_index: int = -100,
                  compute_grad: bool = True):
    """Mean cross-entropy of (N, V) logits against (N,) integer class indices.

    Rows whose target equals ``ignore_index`` are skipped. Returns ``(loss, dlogits)``: loss is a
    Python float, the mean over the counted rows (NaN when no row counts); dlogits (N, V) is
    ``(softmax(logits) - onehot(targets)) / count`` with zero rows for ignored targets, or None
    when ``compute_grad`` is False. Every other target must lie in [0, V): an index outside it
    raises ValueError naming the value and V.
    """
    op = "cross_entropy"
    logits = _float_array(logits, op, "logits")
    if logits.ndim != 2:
        raise ValueError(f"{op}: logits must be 2-D (N, V), got shape {logits.shape}")
    if not isinstance(targets, np.ndarray):
        targets = _as_array(targets, op, "targets")
    if targets.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be an integer array of class indices, got dtype "
                        f"{targets.dtype}")
    if targets.ndim != 1 or targets.shape[0] != logits.shape[0]:
        raise ValueError(f"{op}: targets must have shape ({logits.shape[0]},) to match logits "
                         f"{logits.shape}, got {targets.shape}")
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index,
                                                                    (int, np.integer)):
        raise TypeError(f"{op}: ignore_index must be an integer, got {ignore_index!r}")
    ignore_index = operator.index(ignore_index)
    compute_grad = check_flag(op, "compute_grad", compute_grad)
    n, v = logits.shape

    keep = targets != ignore_index
    bad = keep & ((targets < 0) | (targets >= v))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{op}: target {int(targets[row])} (row {row}) is out of range for "
                         f"{v} classes: targets must be in [0, {v}) or equal ignore_index="
                         f"{ignore_index}")
    count = int(keep.sum())
    if count == 0:  # nothing to average (also covers N == 0)
        return float("nan"), (np.zeros((n, v), dtype=logits.dtype) if compute_grad else None)
    if runtime._backend == "numpy":
        return reference_cross_entropy(logits, targets, ignore_index, compute_grad)

    # Hand C int64 targets with every ignored row marked -1 (never a valid class here), so the
    # kernel sees one simple convention whatever the targets' dtype or ignore_index.
    t64 = targets.astype(np.int64)  # (a fresh C-contiguous array)
    t64[~keep] = -1
    lv, rows, cols, ldl = _rows_layout(logits)
    losses = np.empty(n, dtype=np.float64)
    grad = _empty((n, v), logits.dtype) if compute_grad else None
    fn = _lib.tgl_cross_entropy_f32 if logits.dtype == np.float32 else _lib.tgl_cross_entropy_f64
    nbad = fn(_ptr(lv), ldl, _ffi.cast("int64_t *", t64.ctypes.data), rows, cols, -1,
              1.0 / count, _ffi.cast("double *", losses.ctypes.data),
              _ptr(grad) if grad is not None else _ffi.NULL, runtime._num_threads)
    if nbad:  # cannot happen after the checks above; never ignore it silently if it does
        raise RuntimeError(f"{op}: the C kernel found {nbad} out-of-range targets")
    return float(losses.sum() / count), grad
