"""Matrix products on bfloat16 or float16 inputs, accumulated and returned in float32:
``matmul_lowp``.

NumPy has no bfloat16 of its own (``ml_dtypes.bfloat16`` provides the dtype) and no
low-precision matmul worth the name: ``bf16 @ bf16`` silently computes in float32 through a
slow generic loop, and float16 has no BLAS path. The C GEMM (csrc/gemm_lowp.h) packs the inputs
into float32 panels as it copies them -- exact: every bfloat16 and float16 is a float32, and so
is the product of two of them -- and runs the float32 micro-kernels, so its result is bitwise
the float32 GEMM's on the widened inputs (only the float32 summation order could differ from
another float32 GEMM).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from . import runtime  # runtime._backend and runtime._num_threads change: read at call time
from .matrix import _gemm_ready, _matrix_layout
from .memory import _empty
from .operands import _aligned_copy, _as_array
from .reference import reference_matmul_lowp

_ffi, _lib = runtime._ffi, runtime._lib  # assigned, not imported: see operands.py

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
FLOAT16 = np.dtype(np.float16)
FLOAT32 = np.dtype(np.float32)

# dtype -> (2-D GEMM, strided-batched GEMM) in C
_LOWP_FNS = {} if _lib is None else {
    BFLOAT16: (_lib.tgl_gemm_bf16, _lib.tgl_gemm_bf16_batched),
    FLOAT16: (_lib.tgl_gemm_f16, _lib.tgl_gemm_f16_batched),
}


def _lowp_array(x, op: str, name: str) -> np.ndarray:
    """x as an ndarray of bfloat16 or float16 in native byte order, or a TypeError."""
    if not isinstance(x, np.ndarray):
        x = _as_array(x, op, name)
    if x.dtype != BFLOAT16 and (x.dtype.kind != "f" or x.dtype.itemsize != 2):
        raise TypeError(f"{op}: {name} must have dtype bfloat16 (ml_dtypes.bfloat16) or "
                        f"float16, got {x.dtype} (shape {x.shape}); convert with "
                        f".astype(ml_dtypes.bfloat16) or .astype(np.float16)")
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    return x


def _shapes(op: str, a: np.ndarray, b: np.ndarray) -> tuple:
    """(batch_shape, m, k, n) for a (..., m, k) @ b (k, n) or b (..., k, n) with a's batch."""
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"{op}: a and b must have at least 2 dimensions, got shapes {a.shape} "
                         f"and {b.shape}")
    (m, k), (k2, n) = a.shape[-2:], b.shape[-2:]
    if k != k2:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} do not fit: the inner "
                         f"dimensions differ ({k} != {k2})")
    if b.ndim > 2 and b.shape[:-2] != a.shape[:-2]:
        raise ValueError(f"{op}: b must be 2-D or have a's batch dimensions {a.shape[:-2]}, "
                         f"got shape {b.shape} (no other broadcasting)")
    return a.shape[:-2], m, k, n


def _check_out(op: str, out, shape: tuple, *inputs: np.ndarray) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{op}: out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != FLOAT32:
        raise TypeError(f"{op}: out must have dtype float32, got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"{op}: out must have shape {shape}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{op}: out is read-only")
    if not (out.flags.c_contiguous and out.flags.aligned):
        raise ValueError(f"{op}: out must be C-contiguous and aligned (shape {out.shape}, "
                         f"strides {out.strides}); pass np.empty(shape, np.float32)")
    if any(x is not None and np.may_share_memory(out, x) for x in inputs):
        raise ValueError(f"{op}: out overlaps an input (a, b or bias); the kernel would read "
                         f"values it has already overwritten. Pass a separate array.")
    return out


def matmul_lowp(a, b, *, bias=None, out=None, accumulate: bool = False,
                out_dtype=np.float32) -> np.ndarray:
    """``a @ b (+ bias)`` for bfloat16 or float16 ``a`` and ``b`` (one dtype), products and sums
    in float32.

    a is (..., m, k); b is (k, n) (e.g. a weight: ``x @ w.T`` reads ``w`` transposed in place)
    or (..., k, n) with a's batch dimensions. Any strides: what the GEMM cannot read directly is
    copied first. bias, if given, is float32 (n,) and added to every row.

    out: a float32, C-contiguous array of the result's shape to write into (returned).
    accumulate=True adds the product (and bias) onto out instead of overwriting it (needs out).
    out_dtype: float32 (default), or the inputs' dtype, to get the float32 result rounded to
    it (round to nearest even), as PyTorch's autocast returns bfloat16 from a bfloat16 matmul;
    not with out.

    ``TGL_BACKEND=numpy`` computes ``a.astype(float32) @ b.astype(float32)`` in NumPy instead.
    """
    op = "matmul_lowp"
    a, b = _lowp_array(a, op, "a"), _lowp_array(b, op, "b")
    if a.dtype != b.dtype:
        raise TypeError(f"{op}: a and b must have the same dtype, got {a.dtype} and {b.dtype}")
    batch, m, k, n = _shapes(op, a, b)
    if not isinstance(accumulate, (bool, np.bool_)):
        raise TypeError(f"{op}: accumulate must be a bool, got {accumulate!r}")
    try:
        out_dtype = np.dtype(out_dtype)
    except TypeError:
        raise TypeError(f"{op}: out_dtype must be a dtype, got {out_dtype!r}") from None
    if out_dtype not in (FLOAT32, a.dtype):
        raise TypeError(f"{op}: out_dtype must be float32 or the inputs' dtype {a.dtype}, "
                        f"got {out_dtype}")
    if out_dtype != FLOAT32 and out is not None:
        raise ValueError(f"{op}: out_dtype={out_dtype} cannot be combined with out (out is "
                         f"float32)")
    if bias is not None:
        if not isinstance(bias, np.ndarray) or bias.dtype != FLOAT32 or bias.shape != (n,):
            raise TypeError(f"{op}: bias must be a float32 array of shape ({n},), got "
                            f"{type(bias).__name__} {getattr(bias, 'dtype', '')} "
                            f"{getattr(bias, 'shape', '')}".rstrip())
    if accumulate and out is None:
        raise ValueError(f"{op}: accumulate=True needs out (the array to add onto)")
    if out is not None:
        out = _check_out(op, out, batch + (m, n), a, b, bias)
    result = _matmul_lowp(a, b, batch, m, k, n, bias, out, bool(accumulate))
    return result if out_dtype == FLOAT32 else result.astype(out_dtype)


def _matmul_lowp(a, b, batch, m, k, n, bias, out, accumulate) -> np.ndarray:
    """The checked product (see matmul_lowp): the NumPy reference, or C."""
    if runtime._backend == "numpy":
        return reference_matmul_lowp(a, b, bias=bias, out=out, accumulate=accumulate)
    runtime._require_c("matmul_lowp")
    if out is None:
        out = _empty(batch + (m, n), FLOAT32)
    if not accumulate:
        if bias is None:
            beta = 0.0  # out is only written
        else:
            out[...] = bias  # the GEMM adds onto the bias: no second pass over out
            beta = 1.0
    else:
        if bias is not None:
            out += bias
        beta = 1.0
    if out.size == 0:
        return out
    if k == 0:  # an empty sum: out is already bias, or out (+ bias), or must become 0
        if beta == 0.0:
            out.fill(0)
        return out
    gemm2d, gemm_batched = _LOWP_FNS[a.dtype]
    count = int(np.prod(batch)) if batch else 1
    if b.ndim == 2 and (count == 1 or a.flags.c_contiguous):
        # one product: a's batch folds into its rows (a C-contiguous stack of rows is a matrix)
        a2, b2 = _gemm_ready(a.reshape(count * m, k)), _gemm_ready(b)
        ta, lda = _matrix_layout(count * m, k, a2.strides[0], a2.strides[1], 2)
        tb, ldb = _matrix_layout(k, n, b2.strides[0], b2.strides[1], 2)
        gemm2d(ta, tb, count * m, n, k, 1.0, _ptr16(a2), lda, _ptr16(b2), ldb, beta,
               _ffi.from_buffer("float[]", out), n, runtime._num_threads)
        return out
    # batched: each operand as (count, rows, cols), C-contiguous in its last two axes (a copy
    # if it is not); a 2-D b is the same matrix for every entry (stride 0)
    a3 = _contiguous(a.reshape(count, m, k))
    b3 = _contiguous(b if b.ndim == 2 else b.reshape(count, k, n))
    gemm_batched(0, 0, count, m, n, k, 1.0, _ptr16(a3), k, m * k, _ptr16(b3), n,
                 0 if b.ndim == 2 else k * n, beta, _ffi.from_buffer("float[]", out), n, m * n,
                 runtime._num_threads)
    return out


def _contiguous(x: np.ndarray) -> np.ndarray:
    """x, or an aligned C-contiguous copy when it is not one already."""
    return x if x.flags.c_contiguous and x.flags.aligned else _aligned_copy(x)


def _ptr16(x: np.ndarray):
    """C pointer (uint16_t *) to the first element of a checked bfloat16/float16 array that the
    GEMM reads through _matrix_layout's strides (or a C-contiguous one)."""
    if x.flags.c_contiguous:
        return _ffi.from_buffer("uint16_t[]", x.view(np.uint16))
    return _ffi.cast("uint16_t *", x.ctypes.data)
