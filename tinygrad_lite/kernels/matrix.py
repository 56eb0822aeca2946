"""Matrix products on the C GEMM: ``matmul``, ``gemm`` / ``naive_gemm`` and ``linear``.

``matmul`` tries a lean fast path first (``_matmul_packed``: two C-contiguous or transposed
operands, the common case), then the general path, which handles any strides, 1-D operands and
batch broadcasting without copying what the GEMM can read through strides.
"""

from __future__ import annotations

import itertools

import numpy as np

from . import runtime  # runtime._backend and runtime._num_threads change: read at call time
from .memory import _REUSE_MIN_BYTES, _empty
from .operands import (_aligned_copy, _collapse_batch, _float_array, _ptr, _real_number,
                       _same_dtype)
from .reference import reference_matmul
from .runtime import _require_c

_ffi, _lib = runtime._ffi, runtime._lib  # assigned, not imported: see operands.py


# --------------------------------------------------------------------------------------------
# Shapes and strides: what the GEMM can read without a copy
# --------------------------------------------------------------------------------------------

def _matmul_shapes(a: np.ndarray, b: np.ndarray) -> tuple:
    """Validate np.matmul's shape rules; returns (batch_shape, m, k, n)."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least one dimension, got shapes "
                         f"{a.shape} and {b.shape}")
    m, k = (1, a.shape[0]) if a.ndim == 1 else a.shape[-2:]
    k2, n = (b.shape[0], 1) if b.ndim == 1 else b.shape[-2:]
    if k != k2:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not fit: the inner "
                         f"dimensions differ ({k} != {k2})")
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    if batch_a == batch_b or not batch_b:  # the common cases, without NumPy's general rule
        return batch_a, m, k, n
    if not batch_a:
        return batch_b, m, k, n
    try:
        batch = np.broadcast_shapes(batch_a, batch_b)
    except ValueError:
        raise ValueError(f"matmul: the batch dimensions of {a.shape} and {b.shape} "
                         f"({a.shape[:-2]} and {b.shape[:-2]}) do not broadcast") from None
    return batch, m, k, n


def _matrix_layout(rows: int, cols: int, s0: int, s1: int, itemsize: int):
    """How the GEMM can read a rows x cols matrix with byte strides (s0, s1).

    Returns (trans, ld): trans=False, the matrix is row-major with row stride ld (elements);
    trans=True, it is the transpose of a row-major cols x rows matrix with row stride ld -- e.g.
    ``x.T`` of a C-contiguous x, which is how the backward's Aᵀ·G needs no copy. None when
    neither fits (negative, zero or non-unit strides, overlapping rows): the caller copies.
    The stride of a dimension of length 1 is never used, so it does not matter.
    """
    if (cols == 1 or s1 == itemsize) and (rows == 1 or (s0 % itemsize == 0 and
                                                        s0 >= cols * itemsize)):
        return False, (s0 // itemsize if rows > 1 else cols)
    if (rows == 1 or s0 == itemsize) and (cols == 1 or (s1 % itemsize == 0 and
                                                        s1 >= rows * itemsize)):
        return True, (s1 // itemsize if cols > 1 else rows)
    return None


def _gemm_ready(x: np.ndarray) -> np.ndarray:
    """x itself when the GEMM can read its last two axes through strides, else a C-contiguous
    copy. Batch axes must have non-negative strides (the batched kernel steps forward)."""
    if (x.flags.aligned and all(s >= 0 for s in x.strides[:-2])
            and _matrix_layout(x.shape[-2], x.shape[-1], x.strides[-2], x.strides[-1],
                               x.itemsize) is not None):
        return x
    return _aligned_copy(x)


# --------------------------------------------------------------------------------------------
# The general path: any strides, 1-D operands, batch broadcasting
# --------------------------------------------------------------------------------------------

def _gemm_call(naive: bool, dtype, trans_a, trans_b, m, n, k, alpha, a, a_off, lda,
               b, b_off, ldb, beta, c, c_off, ldc):
    """One 2-D GEMM call into C on checked operands (byte offsets into a, b, c)."""
    lib = _lib
    if naive:
        fn = lib.tgl_sgemm_naive if dtype == np.float32 else lib.tgl_dgemm_naive
        fn(trans_a, trans_b, m, n, k, alpha, _ptr(a, a_off), lda, _ptr(b, b_off), ldb, beta,
           _ptr(c, c_off), ldc)
    else:
        fn = lib.tgl_sgemm if dtype == np.float32 else lib.tgl_dgemm
        fn(trans_a, trans_b, m, n, k, alpha, _ptr(a, a_off), lda, _ptr(b, b_off), ldb, beta,
           _ptr(c, c_off), ldc, runtime._num_threads)


def _c_matmul(a: np.ndarray, b: np.ndarray, batch: tuple, m: int, k: int, n: int) -> np.ndarray:
    a2 = a[None, :] if a.ndim == 1 else a  # 1-D operands: a row vector / a column vector
    b2 = b[:, None] if b.ndim == 1 else b
    out = _empty(batch + (m, n), a.dtype)
    if out.size == 0:
        pass
    elif k == 0:
        out.fill(0)  # an empty sum
    else:
        a2, b2 = _gemm_ready(a2), _gemm_ready(b2)
        trans_a, lda = _matrix_layout(m, k, a2.strides[-2], a2.strides[-1], a2.itemsize)
        trans_b, ldb = _matrix_layout(k, n, b2.strides[-2], b2.strides[-1], b2.itemsize)
        if not batch:  # one plain 2-D product
            _gemm_call(False, out.dtype, trans_a, trans_b, m, n, k, 1.0, a2, 0, lda,
                       b2, 0, ldb, 0.0, out, 0, n)
            return _drop_promoted_dims(out, a, b, n)
        # Broadcast the batch dimensions: a broadcast dimension gets stride 0, so one matrix
        # is reused for every batch entry without being copied.
        av = a2 if a2.shape[:-2] == batch else np.broadcast_to(a2, batch + (m, k))
        bv = b2 if b2.shape[:-2] == batch else np.broadcast_to(b2, batch + (k, n))
        groups = _collapse_batch(batch, av.strides[:-2], bv.strides[:-2], out.strides[:-2])
        e = out.itemsize
        if not groups:  # every batch dimension has size 1
            _gemm_call(False, out.dtype, trans_a, trans_b, m, n, k, 1.0, av, 0, lda,
                       bv, 0, ldb, 0.0, out, 0, n)
        else:
            # The innermost group goes to the strided-batched kernel in one call; any outer
            # groups (batch dims that cannot share one stride) are looped over here.
            inner_count, (sa, sb, sc) = groups[-1]
            batched = (_lib.tgl_sgemm_batched if out.dtype == np.float32
                       else _lib.tgl_dgemm_batched)
            outer = groups[:-1]
            for idx in itertools.product(*(range(size) for size, _ in outer)):
                oa = sum(i * st[0] for i, (_, st) in zip(idx, outer))
                ob = sum(i * st[1] for i, (_, st) in zip(idx, outer))
                oc = sum(i * st[2] for i, (_, st) in zip(idx, outer))
                batched(trans_a, trans_b, inner_count, m, n, k, 1.0,
                        _ptr(av, oa), lda, sa // e, _ptr(bv, ob), ldb, sb // e, 0.0,
                        _ptr(out, oc), n, sc // e, runtime._num_threads)
    return _drop_promoted_dims(out, a, b, n)


def _drop_promoted_dims(out: np.ndarray, a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Remove the dimensions that 1-D operands were promoted with (np.matmul's rule)."""
    if a.ndim == 1:
        out = out.reshape(out.shape[:-2] + (n,))
    if b.ndim == 1:
        out = out.reshape(out.shape[:-1])
    return out


# --------------------------------------------------------------------------------------------
# Public kernel API: matrix multiply
# --------------------------------------------------------------------------------------------

# The C GEMM entry points by dtype: (cffi array type, 2-D gemm, strided-batched gemm).
_GEMM_FNS = {} if _lib is None else {
    np.dtype(np.float32): (_ffi.typeof("float[]"), _lib.tgl_sgemm, _lib.tgl_sgemm_batched),
    np.dtype(np.float64): (_ffi.typeof("double[]"), _lib.tgl_dgemm, _lib.tgl_dgemm_batched),
}


# _buffer(ctype, x): C pointer (a cffi array) to the whole of the C-contiguous, aligned array x.
# (The tests swap in a version that checks alignment.)
_buffer = None if _ffi is None else _ffi.from_buffer


def _packed_operand(x: np.ndarray):
    """(array to point at, trans, ld) when x (2-D or 3-D, aligned) is C-contiguous, or is the
    transpose of a C-contiguous array in its last two axes (``w.T``, ``g.transpose(0, 2, 1)``);
    None otherwise. The array to point at is the C-contiguous one, so its buffer is exactly the
    memory the kernel reads."""
    flags = x.flags
    if not flags.aligned:
        return None
    if flags.c_contiguous:
        return x, False, x.shape[-1]
    xt = x.T if x.ndim == 2 else x.swapaxes(1, 2)
    if xt.flags.c_contiguous:
        return xt, True, x.shape[-2]
    return None


def _matmul_packed(a: np.ndarray, b: np.ndarray):
    """The common case of ``matmul`` with as little Python as possible, or None if it does not
    apply: two non-empty arrays of one float dtype, both 2-D or both 3-D with the same batch
    size, each C-contiguous or a transposed C-contiguous array (the backward's Aᵀ·G and G·Bᵀ).

    A 64x64x64 float32 product takes ~3.5 µs in C; the general path above spends ~13 µs of
    Python on strides and batch broadcasting, this one ~2.5 µs, so small products -- most of a
    small model's -- come here first. Everything the C call relies on is still checked: dtype,
    shapes, alignment and contiguity (the pointers come from ffi.from_buffer, which covers the
    whole array).
    """
    fns = _GEMM_FNS.get(a.dtype)
    if fns is None or b.dtype != a.dtype:
        return None
    if a.ndim == 2 and b.ndim == 2:
        (m, k), (k2, n) = a.shape, b.shape
        batch = 0
    elif a.ndim == 3 and b.ndim == 3 and a.shape[0] == b.shape[0]:
        (batch, m, k), (_, k2, n) = a.shape, b.shape
        if batch == 0:
            return None
    else:
        return None
    if k != k2 or m == 0 or n == 0 or k == 0:
        return None  # shape errors and empty products: the general path explains / handles
    fa, fb = a.flags, b.flags
    if fa.c_contiguous and fb.c_contiguous and fa.aligned and fb.aligned:
        (av, ta, lda), (bv, tb, ldb) = (a, False, k), (b, False, n)  # the commonest case
    else:
        pa, pb = _packed_operand(a), _packed_operand(b)
        if pa is None or pb is None:
            return None
        (av, ta, lda), (bv, tb, ldb) = pa, pb
    ctype, gemm2d, gemm_batched = fns
    from_buffer = _buffer
    if batch:
        out = _empty((batch, m, n), a.dtype)
        gemm_batched(ta, tb, batch, m, n, k, 1.0, from_buffer(ctype, av), lda, m * k,
                     from_buffer(ctype, bv), ldb, k * n, 0.0, from_buffer(ctype, out), n, m * n,
                     runtime._num_threads)
    else:
        out = (np.empty((m, n), dtype=a.dtype) if m * n * a.itemsize < _REUSE_MIN_BYTES
               else _empty((m, n), a.dtype))
        gemm2d(ta, tb, m, n, k, 1.0, from_buffer(ctype, av), lda, from_buffer(ctype, bv), ldb,
               0.0, from_buffer(ctype, out), n, runtime._num_threads)
    return out


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul`` for two float32 or two float64 arrays (1-D promotion, batch broadcasting).

    Mixed or non-float dtypes raise TypeError: the engine decides what to do with integers.
    A 1-D @ 1-D product returns a 0-d array.
    """
    if runtime._backend == "c" and type(a) is np.ndarray and type(b) is np.ndarray:
        out = _matmul_packed(a, b)
        if out is not None:
            return out
    a = _float_array(a, "matmul", "a")
    b = _float_array(b, "matmul", "b")
    _same_dtype("matmul", a=a, b=b)
    batch, m, k, n = _matmul_shapes(a, b)
    if runtime._backend == "numpy":
        return np.asarray(reference_matmul(a, b))
    return _c_matmul(a, b, batch, m, k, n)


def _gemm_2d(naive: bool, a, b, c, alpha, beta, trans_a, trans_b):
    op = "naive_gemm" if naive else "gemm"
    _require_c(op)
    a = _float_array(a, op, "a")
    b = _float_array(b, op, "b")
    _same_dtype(op, a=a, b=b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"{op}: a and b must be 2-D, got shapes {a.shape} and {b.shape}")
    opa = a.T if trans_a else a  # the matrices as they enter the product
    opb = b.T if trans_b else b
    (m, k), (k2, n) = opa.shape, opb.shape
    if k != k2:
        raise ValueError(f"{op}: op(a) is {m}x{k} and op(b) is {k2}x{n}: inner dimensions "
                         f"differ (a {a.shape}, trans_a={bool(trans_a)}; b {b.shape}, "
                         f"trans_b={bool(trans_b)})")
    alpha, beta = _real_number(alpha, op, "alpha"), _real_number(beta, op, "beta")
    if c is None:
        c, beta = _empty((m, n), a.dtype), 0.0
    else:
        if not isinstance(c, np.ndarray):
            raise TypeError(f"{op}: c must be a numpy.ndarray, got {type(c).__name__}")
        if c.dtype != a.dtype:
            raise TypeError(f"{op}: c must have dtype {a.dtype} like a and b, got {c.dtype}")
        if c.shape != (m, n):
            raise ValueError(f"{op}: c must have shape {(m, n)}, got {c.shape}")
        if not c.flags.writeable:
            raise ValueError(f"{op}: c is read-only")
        e = c.itemsize
        if c.size and not (c.flags.aligned and (n == 1 or c.strides[1] == e)
                and (m == 1 or (c.strides[0] % e == 0 and c.strides[0] >= n * e))):
            raise ValueError(f"{op}: c must be row-major with unit column stride and aligned "
                             f"(shape {c.shape}, strides {c.strides}); pass a C-contiguous "
                             f"array")
        if np.may_share_memory(c, a) or np.may_share_memory(c, b):
            raise ValueError(f"{op}: the output c overlaps an input (a or b); the kernel would "
                             f"read values it has already overwritten. Pass a separate array.")
    if m == 0 or n == 0:
        return c
    if k == 0:  # C = alpha * (empty sum) + beta * C
        if beta == 0.0:
            c.fill(0)
        else:
            c *= beta
        return c
    opa, opb = _gemm_ready(opa), _gemm_ready(opb)
    ta, lda = _matrix_layout(m, k, opa.strides[0], opa.strides[1], opa.itemsize)
    tb, ldb = _matrix_layout(k, n, opb.strides[0], opb.strides[1], opb.itemsize)
    ldc = c.strides[0] // c.itemsize if m > 1 else n
    _gemm_call(naive, a.dtype, ta, tb, m, n, k, alpha, opa, 0, lda, opb, 0, ldb, beta, c, 0,
               ldc)
    return c


def gemm(a, b, c=None, alpha=1.0, beta=0.0, trans_a=False, trans_b=False) -> np.ndarray:
    """BLAS-style ``c = alpha * op(a) @ op(b) + beta * c`` on 2-D arrays with the C kernel.

    op(x) is x, or x.T when the trans flag is set. ``c=None`` allocates the output (beta is then
    irrelevant). A given ``c`` is written in place and returned; it must be C-contiguous-like
    (row-major, unit column stride) and must not overlap a or b. Always the C backend.
    """
    return _gemm_2d(False, a, b, c, alpha, beta, trans_a, trans_b)


def naive_gemm(a, b, c=None, alpha=1.0, beta=0.0, trans_a=False, trans_b=False) -> np.ndarray:
    """Like :func:`gemm`, with the plain triple-loop C reference (one thread): the baseline the
    fast GEMM is tested and benchmarked against."""
    return _gemm_2d(True, a, b, c, alpha, beta, trans_a, trans_b)


# --------------------------------------------------------------------------------------------
# Public kernel API: a linear layer's forward, x @ wᵀ + b
# --------------------------------------------------------------------------------------------

def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x @ w.T + b`` for x (N, in), w (out, in), b (out,), all of one float dtype.

    The C path writes b into every row of the output and lets the GEMM accumulate onto it
    (beta = 1): no separate pass over a new (N, out) array for the bias -- for the tiny GPT's
    vocabulary head that array is 100 MB.
    """
    op = "linear"
    x, w, b = _float_array(x, op, "x"), _float_array(w, op, "weight"), _float_array(b, op, "bias")
    _same_dtype(op, x=x, weight=w, bias=b)
    if x.ndim != 2 or w.ndim != 2 or b.ndim != 1 or x.shape[1] != w.shape[1] or \
            b.shape[0] != w.shape[0]:
        raise ValueError(f"{op}: needs x (N, in), weight (out, in) and bias (out,), got shapes "
                         f"{x.shape}, {w.shape} and {b.shape}")
    if runtime._backend == "numpy":
        return x @ w.T + b
    (m, k), n = x.shape, w.shape[0]
    out = _empty((m, n), x.dtype)
    out[...] = b
    px, pw = _packed_operand(x), _packed_operand(w.T)
    if px is None or pw is None or m == 0 or n == 0 or k == 0 or x.dtype not in _GEMM_FNS:
        return _gemm_2d(False, x, w, out, 1.0, 1.0, False, True)  # the general, checked path
    # The common case (see _matmul_packed): out is our own fresh array, so it cannot overlap.
    ctype, gemm2d, _ = _GEMM_FNS[x.dtype]
    (xv, tx, ldx), (wv, tw, ldw) = px, pw
    gemm2d(tx, tw, m, n, k, 1.0, _buffer(ctype, xv), ldx, _buffer(ctype, wv), ldw, 1.0,
           _buffer(ctype, out), n, runtime._num_threads)
    return out
