"""The bridge between the engine and the compute kernels.

Every heavy array computation the engine needs (matrix multiply, softmax, log-softmax and the
fused softmax-cross-entropy) goes through the functions in this module. They take and return
NumPy arrays and are the *only* place that calls into C.

Two backends implement them:

* ``"c"`` (the default) -- the hand-written kernels in ``csrc/``, compiled when the package is
  installed (cffi, API mode) into the extension module ``tinygrad_lite._C``.
* ``"numpy"`` -- plain NumPy reference implementations. They are what the tests compare the C
  kernels against, and they are used only when chosen explicitly: ``TGL_BACKEND=numpy`` in the
  environment, ``set_backend("numpy")`` or ``with use_backend("numpy"): ...``.

If the C module is missing and the "c" backend is in use, importing this module raises an
ImportError that says how to build it -- there is no silent fallback to NumPy. (The usual way to
get there: running Python in the repository root after a non-editable ``pip install .``: the
source folder, which has no compiled module, shadows the installed package; the error says so.)

Why so much checking? C has no bounds checks: a wrong stride, a short buffer or an out-of-range
class index would read or write memory it does not own and crash the process (or, worse, give
wrong numbers). So every C call below is preceded by Python checks of dtype, shape, strides,
alignment, aliasing and empty sizes, and an input the kernel cannot take as it is (e.g. negative
strides) is copied to a contiguous array first. Bad input gets a Python exception that names the
shapes, dtypes or values involved.

Settings:

* ``TGL_NUM_THREADS`` / ``set_num_threads(n)``: threads the C kernels may use (default: the CPUs
  available to this process).
* ``TGL_GEMM_PORTABLE=1`` / ``force_portable_gemm(True)``: use the portable C GEMM micro-kernel
  instead of the AVX-512/AVX2 one (for testing that path on a machine that has the wide one).

Each variable is checked at import: ``TGL_BACKEND`` is ``c`` or ``numpy``, ``TGL_NUM_THREADS`` a
positive integer, ``TGL_GEMM_PORTABLE`` one of 1/true/yes/on or 0/false/no/off (any case); unset
or empty means the default, and any other value raises ValueError naming it.

Fork: in a child made by ``os.fork()`` (a ``multiprocessing`` worker with the "fork" start
method, the default on Linux before Python 3.14) the kernels run on one thread. GCC's OpenMP
runtime is not fork-safe: a multi-threaded call in the child of a process that has already
used threads would wait forever for worker threads that were not copied. One thread never
enters the thread pool, so the child works; ``set_num_threads(n > 1)`` there raises. Use the
"spawn" or "forkserver" start method for threaded kernels in workers.

Output arrays of 4 MiB and more are carved from memory maps that are reused once every view of
an earlier output is gone (see ``_empty``); ``empty_cache()`` releases the unused ones.

One performance rule for the "c" path: it never calls NumPy's BLAS (``np.dot``, ``np.matmul``,
``np.einsum``...). OpenBLAS worker threads keep spinning for ~0.1 s after a call and would steal
the cores our OpenMP kernels are about to use. Elementwise NumPy is fine.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.machinery
import itertools
import math
import mmap
import operator
import os
import sys
import weakref

import numpy as np

# -- the environment variables read here, each validated: a typo must not be silently ignored --

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _env_choice(name: str, choices: tuple, default: str) -> str:
    """The value of environment variable ``name`` (case-insensitive, unset or empty: default),
    or a ValueError naming the variable, its value and the accepted values."""
    text = os.environ.get(name, "").strip().lower()
    if not text:
        return default
    if text not in choices:
        raise ValueError(f"tinygrad_lite: the environment variable {name}="
                         f"{os.environ[name]!r} is not valid; accepted values: "
                         f"{', '.join(choices)} (or unset)")
    return text


def _env_flag(name: str) -> bool:
    """A yes/no environment variable: 1/true/yes/on or 0/false/no/off, unset means no."""
    return _env_choice(name, _TRUE + _FALSE, "0") in _TRUE


_BACKENDS = ("c", "numpy")
_backend = _env_choice("TGL_BACKEND", _BACKENDS, "c")

# --------------------------------------------------------------------------------------------
# Loading the C module
# --------------------------------------------------------------------------------------------

_BUILD_HINT = (
    "the C kernels of tinygrad_lite are not built (the extension module tinygrad_lite._C is "
    "missing or does not load). Build them from the repository root with `pip install -e .` "
    "(this needs a C compiler such as gcc), or choose the NumPy reference implementation "
    "explicitly with the environment variable TGL_BACKEND=numpy."
)

_ffi = None  # cffi's FFI object for the C module (None when it is not built)
_lib = None  # the compiled functions
_load_error: BaseException | None = None

try:
    from . import _C  # type: ignore[attr-defined]

    _ffi, _lib = _C.ffi, _C.lib
except ImportError as exc:  # not built (or built for another Python)
    _load_error = exc

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _built_module_in(folder: str) -> str | None:
    """Path of a compiled tinygrad_lite._C in ``folder`` (a package folder), or None."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        found = glob.glob(os.path.join(glob.escape(folder), "_C" + suffix))
        if found:
            return found[0]
    return None


def _installed_copy_elsewhere() -> str | None:
    """The folder of another tinygrad_lite on sys.path that has the compiled module, or None."""
    here = os.path.realpath(_PACKAGE_DIR)
    for entry in sys.path:
        folder = os.path.realpath(os.path.join(entry or os.getcwd(), "tinygrad_lite"))
        if folder != here and _built_module_in(folder):
            return folder
    return None


def _why_not_loaded() -> str:
    """What went wrong loading the C module, and the fix.

    The common trap: `pip install .` builds the module into site-packages only, and Python puts
    the current directory first on sys.path (``python -c``, ``python -m``), so from the
    repository root `import tinygrad_lite` finds the source folder, which has no module (NumPy
    then blames a "circular import", which is not the cause)."""
    if _built_module_in(_PACKAGE_DIR) is not None:  # there, but does not load
        return f"{_BUILD_HINT} (cause: {_load_error})"
    installed = _installed_copy_elsewhere()
    in_checkout = os.path.isdir(os.path.join(os.path.dirname(_PACKAGE_DIR), "csrc"))
    if installed and in_checkout:
        return (f"`import tinygrad_lite` found the source folder {_PACKAGE_DIR} (a repository "
                f"checkout, where the C kernels are not built) before the installed copy in "
                f"{installed}, because it comes earlier on sys.path: Python puts the current "
                f"directory first (`python -c`, `python -m`), so run from the repository root it "
                f"shadows the installed package. Fix: run from another directory, or install "
                f"in place with `pip install -e .` (it builds the kernels "
                f"into the source folder).")
    return f"{_BUILD_HINT} (cause: no compiled module _C in {_PACKAGE_DIR})"


if _backend == "c" and _lib is None:
    raise ImportError(f"tinygrad_lite: {_why_not_loaded()}") from _load_error


def c_available() -> bool:
    """True when the compiled C kernels could be loaded."""
    return _lib is not None


def _require_c(what: str):
    if _lib is None:
        raise ImportError(f"tinygrad_lite: {what} needs the C kernels, but "
                          f"{_why_not_loaded()}") from _load_error
    return _lib


# --------------------------------------------------------------------------------------------
# Backend selection
# --------------------------------------------------------------------------------------------

def get_backend() -> str:
    """Name of the backend in use: ``"c"`` or ``"numpy"``."""
    return _backend


def set_backend(name: str) -> None:
    """Choose the backend for all kernels: ``"c"`` or ``"numpy"``."""
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {name!r}")
    if name == "c":
        _require_c('set_backend("c")')
    _backend = name


@contextlib.contextmanager
def use_backend(name: str):
    """Context manager that runs its body with the given backend, then restores the previous one."""
    previous = _backend
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


# --------------------------------------------------------------------------------------------
# Threads and the GEMM code path
# --------------------------------------------------------------------------------------------

def _available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))  # respects taskset / container CPU limits
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _threads_from_env() -> int:
    text = os.environ.get("TGL_NUM_THREADS", "").strip()
    if not text:
        return _available_cpus()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise ValueError(f"tinygrad_lite: the environment variable TGL_NUM_THREADS={text!r} is "
                         f"not valid; accepted values: a positive integer such as 1 or 4 (or "
                         f"unset: the CPUs available, here {_available_cpus()})")
    return int(text)


_num_threads = _threads_from_env()


# Fork: the OpenMP runtime (GCC's libgomp) keeps a pool of worker threads after the first
# parallel region. os.fork() copies only the calling thread, but the child inherits libgomp's
# record of the pool, so the child's next parallel region waits forever for workers that do not
# exist. So a forked child runs the kernels on one thread: every C kernel then skips its
# parallel region (`if (nt > 1)` / `nt <= 1` in csrc/) and never touches the pool.
_forked_child = False


def _after_fork_in_child() -> None:
    global _num_threads, _forked_child
    _num_threads, _forked_child = 1, True


if hasattr(os, "register_at_fork"):  # POSIX only; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def get_num_threads() -> int:
    """Threads the C kernels may use."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Set the number of threads the C kernels may use (a positive integer).

    In a process made by ``os.fork()`` (e.g. a ``multiprocessing`` worker with the "fork" start
    method) only 1 is allowed: see "Fork" in the module docstring.
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads needs a positive integer, got {n!r}")
    if _forked_child and n > 1:
        raise RuntimeError(f"set_num_threads({n}): this process was made by os.fork() (e.g. a "
                           f"multiprocessing worker with the 'fork' start method), where the "
                           f"OpenMP runtime cannot start threads (it would hang); the kernels "
                           f"run on 1 thread here. For threaded kernels in workers use the "
                           f"'spawn' or 'forkserver' start method.")
    _num_threads = int(n)


_portable_forced = False


def _set_portable(on: bool) -> None:
    global _portable_forced
    _require_c("force_portable_gemm").tgl_gemm_set_portable(1 if on else 0)
    _portable_forced = bool(on)


class force_portable_gemm:
    """Force (``on=True``) or release (``on=False``) the portable C GEMM micro-kernel.

    Use it as a call (the setting stays) or as a context manager (the previous setting comes
    back at the end of the block)::

        with force_portable_gemm():
            ...  # every GEMM here runs the portable code path
    """

    def __init__(self, on: bool = True):
        self._previous = _portable_forced
        _set_portable(on)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        _set_portable(self._previous)
        return False


_GEMM_PATHS = {0: "portable", 1: "avx2", 2: "avx512"}


def gemm_path() -> str:
    """The GEMM micro-kernel in use: ``"avx512"``, ``"avx2"`` or ``"portable"``."""
    return _GEMM_PATHS.get(_require_c("gemm_path").tgl_gemm_path(), "portable")


if _env_flag("TGL_GEMM_PORTABLE") and _lib is not None:
    _set_portable(True)


# --------------------------------------------------------------------------------------------
# Output arrays: large ones reuse memory
# --------------------------------------------------------------------------------------------
# A fresh large array is memory the operating system maps and zeroes page by page when it is
# first written: for the tiny GPT's 100 MB logits gradient that costs ~20 ms at one thread, as
# much as the cross-entropy kernel itself, every step -- and glibc's malloc hands blocks that big
# back to the system on free, so the next step pays again. So outputs of at least
# _REUSE_MIN_BYTES come from a small cache of anonymous memory maps instead (the idea of
# PyTorch's CUDA caching allocator): when the last array or view using a map is gone, the map
# goes back to the cache, and the next output of the same size reuses it, already mapped.
#
# How "the last view is gone" is known: the output is a view of `flat`, a 1-D array made with
# np.frombuffer over the map. NumPy points every view's .base at `flat` (not at the map, which is
# not an array), so `flat` lives exactly as long as any view of the output does, and a
# weakref.finalize on it returns the map. The cache holds at most _REUSE_CACHE_BYTES of unused
# maps; ``empty_cache()`` releases them.

_REUSE_MIN_BYTES = 4 << 20
_REUSE_CACHE_BYTES = 1 << 30
_free_maps: dict = {}  # size in bytes -> unused memory maps of that size
_free_bytes = 0


def _return_map(buf: mmap.mmap, size: int) -> None:
    global _free_bytes
    if _free_bytes + size <= _REUSE_CACHE_BYTES:
        _free_maps.setdefault(size, []).append(buf)
        _free_bytes += size
    # else: dropped; the map is unmapped when the last reference to it goes


def empty_cache() -> None:
    """Release the memory kept for reuse by large kernel outputs (see above)."""
    global _free_bytes
    _free_maps.clear()
    _free_bytes = 0


def _empty(shape: tuple, dtype: np.dtype) -> np.ndarray:
    """np.empty(shape, dtype) for kernel outputs; large ones reuse memory (see above)."""
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < _REUSE_MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    global _free_bytes
    size = -(-nbytes // (2 << 20)) * (2 << 20)  # whole 2 MiB huge pages: sizes repeat better
    maps = _free_maps.get(size)
    if maps:
        buf = maps.pop()
        _free_bytes -= size
    else:
        # Private, like malloc's memory: a forked child writing to an output must not change
        # the parent's copy (mmap's default, MAP_SHARED, would share it).
        buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
        if hasattr(mmap, "MADV_HUGEPAGE"):  # fewer page faults and TLB misses, as NumPy does
            buf.madvise(mmap.MADV_HUGEPAGE)
    flat = np.frombuffer(buf, dtype=dtype, count=nbytes // dtype.itemsize)
    weakref.finalize(flat, _return_map, buf, size)
    return flat.reshape(shape)


# --------------------------------------------------------------------------------------------
# NumPy reference implementations (the "numpy" backend)
# --------------------------------------------------------------------------------------------

def reference_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(a, b)


def reference_softmax(x: np.ndarray) -> np.ndarray:
    """softmax over the last axis, shifted by the row max so exp never overflows."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def reference_log_softmax(x: np.ndarray) -> np.ndarray:
    """log_softmax(x) = x - logsumexp(x) over the last axis."""
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def reference_softmax_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Given y = softmax(x): dx = y * (dy - sum(dy * y))."""
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def reference_log_softmax_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Given y = log_softmax(x): dx = dy - exp(y) * sum(dy)."""
    return dy - np.exp(y) * dy.sum(axis=-1, keepdims=True)


def reference_cross_entropy(logits: np.ndarray, targets: np.ndarray, ignore_index: int = -100,
                            compute_grad: bool = True):
    """Mean cross-entropy of (N, V) logits against (N,) integer targets, skipping ignore_index.

    Returns (loss, dlogits) where dlogits = (softmax(logits) - onehot(targets)) / count for the
    counted rows and 0 for ignored rows (None when compute_grad is False). Ignored rows never
    count, even when they hold NaN or Inf (as in PyTorch).
    """
    n = logits.shape[0]
    keep = targets != ignore_index
    count = int(keep.sum())
    logp = reference_log_softmax(logits)
    rows = np.arange(n)
    safe_targets = np.where(keep, targets, 0)
    picked = np.where(keep, logp[rows, safe_targets], 0.0)  # where, not * keep: NaN * 0 is NaN
    loss = float(-picked.sum() / count) if count else float("nan")
    if not compute_grad:
        return loss, None
    grad = np.exp(logp)
    grad[rows, safe_targets] -= 1.0
    grad = np.where(keep[:, None], grad / max(count, 1), 0.0)  # ignored rows: exactly 0
    return loss, grad.astype(logits.dtype, copy=False)


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
           _ptr(c, c_off), ldc, _num_threads)


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
                        _ptr(out, oc), n, sc // e, _num_threads)
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

    A 64x64x64 float32 product takes ~3.5 µs in C; the general path below spends ~13 µs of
    Python on strides and batch broadcasting, this one ~2.5 µs, so small products -- most of a
    small model's -- come here first. Everything the C call relies on is still checked: dtype, shapes, alignment and
    contiguity (the pointers come from ffi.from_buffer, which covers the whole array).
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
                     _num_threads)
    else:
        out = (np.empty((m, n), dtype=a.dtype) if m * n * a.itemsize < _REUSE_MIN_BYTES
               else _empty((m, n), a.dtype))
        gemm2d(ta, tb, m, n, k, 1.0, from_buffer(ctype, av), lda, from_buffer(ctype, bv), ldb,
               0.0, from_buffer(ctype, out), n, _num_threads)
    return out


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul`` for two float32 or two float64 arrays (1-D promotion, batch broadcasting).

    Mixed or non-float dtypes raise TypeError: the engine decides what to do with integers.
    A 1-D @ 1-D product returns a 0-d array.
    """
    if _backend == "c" and type(a) is np.ndarray and type(b) is np.ndarray:
        out = _matmul_packed(a, b)
        if out is not None:
            return out
    a = _float_array(a, "matmul", "a")
    b = _float_array(b, "matmul", "b")
    _same_dtype("matmul", a=a, b=b)
    batch, m, k, n = _matmul_shapes(a, b)
    if _backend == "numpy":
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
    if _backend == "numpy":
        return reference(x)
    xv, rows, cols, ldx = _rows_layout(x)
    y = _empty(x.shape, x.dtype)
    suffix = "_f32" if x.dtype == np.float32 else "_f64"
    getattr(_lib, c_name + suffix)(_ptr(xv), ldx, _ptr(y), rows, cols, _num_threads)
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
    if _backend == "numpy":
        return reference(y, dy)
    yv, rows, cols, ldy = _rows_layout(y)
    dv, _, _, ldd = _rows_layout(dy)
    dx = _empty(y.shape, y.dtype)
    suffix = "_f32" if y.dtype == np.float32 else "_f64"
    getattr(_lib, c_name + suffix)(_ptr(yv), ldy, _ptr(dv), ldd, _ptr(dx), rows, cols,
                                   _num_threads)
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
    if _backend == "numpy":
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
              _ptr(grad) if grad is not None else _ffi.NULL, _num_threads)
    if nbad:  # cannot happen after the checks above; never ignore it silently if it does
        raise RuntimeError(f"{op}: the C kernel found {nbad} out-of-range targets")
    return float(losses.sum() / count), grad


# --------------------------------------------------------------------------------------------
# Public kernel API: the fused Adam / AdamW update
# --------------------------------------------------------------------------------------------

def reference_adam_step(p, g, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, step):
    """NumPy version of csrc/adam.c, in place on p, m and v (see ``adam_step``).

    In place and with one scratch array: even so it makes about ten passes over each array,
    which is why the C kernel exists."""
    if weight_decay != 0:
        if decoupled:
            p *= 1.0 - lr * weight_decay                  # AdamW: shrink p directly
        else:
            g = g + weight_decay * p                      # Adam: L2 penalty in the gradient
    scratch = np.multiply(g, 1.0 - beta1, dtype=p.dtype)
    m *= beta1
    m += scratch                                          # m = b1 m + (1 - b1) g
    np.multiply(g, g, out=scratch)
    scratch *= 1.0 - beta2
    v *= beta2
    v += scratch                                          # v = b2 v + (1 - b2) g²
    np.sqrt(v, out=scratch)
    scratch *= 1.0 / math.sqrt(1.0 - beta2 ** step)       # sqrt(v_hat) = sqrt(v) / sqrt(bc2)
    scratch += eps
    np.divide(m, scratch, out=scratch)
    scratch *= lr / (1.0 - beta1 ** step)                 # m_hat = m / bc1
    p -= scratch


def _check_adam_scalars(op: str, *, lr, beta1, beta2, eps, weight_decay, step) -> None:
    """The scalar arguments of adam_step, checked before C sees them: beta = 1 would divide by
    zero in the bias correction, and a NaN would silently turn every weight into NaN."""
    for name, value in (("lr", lr), ("beta1", beta1), ("beta2", beta2), ("eps", eps),
                        ("weight_decay", weight_decay)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                         np.floating)):
            raise TypeError(f"{op}: {name} must be a real number, got {type(value).__name__} "
                            f"{value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{op}: {name} must be finite, got {value!r}")
    for name, value in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{op}: {name} must be in [0, 1), got {value!r}")
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"{op}: step must be an integer >= 1, got {step!r}")


def adam_step(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, *, lr: float,
              beta1: float, beta2: float, eps: float, weight_decay: float, decoupled: bool,
              step: int) -> None:
    """One Adam (``decoupled=False``) or AdamW (``decoupled=True``) update of parameter ``p``
    with gradient ``g`` and moment buffers ``m``, ``v``, in place, at step number ``step`` >= 1.

    p, m and v must be writable, C-contiguous and distinct; all four of one float dtype and
    one shape. The C kernel does it in one pass over memory.
    """
    op = "adam_step"
    arrays = {"p": p, "g": g, "m": m, "v": v}
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: {name} must be a NumPy array, got {type(a).__name__}")
        if a.dtype not in _CTYPE:
            raise TypeError(f"{op}: {name} must be float32 or float64, got {a.dtype}")
        if a.shape != p.shape:
            raise ValueError(f"{op}: {name} has shape {a.shape}, the parameter {p.shape}")
    _same_dtype(op, **arrays)
    for name in ("p", "m", "v"):
        a = arrays[name]
        if not (a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
                and a.dtype.isnative):
            raise ValueError(f"{op}: {name} must be a writable, aligned, C-contiguous array in "
                             f"native byte order (shape {a.shape}, strides {a.strides})")
    for x, y in itertools.combinations(("p", "g", "m", "v"), 2):
        if np.may_share_memory(arrays[x], arrays[y]):
            raise ValueError(f"{op}: {x} and {y} share memory; each needs its own array")
    _check_adam_scalars(op, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                        weight_decay=weight_decay, step=step)
    if p.size == 0:
        return
    if _backend == "numpy":
        reference_adam_step(p, g, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, step)
        return
    if not (g.flags.c_contiguous and g.dtype.isnative and g.flags.aligned):
        g = _aligned_copy(g)  # the gradient is only read: a contiguous copy will do
    fn = _lib.tgl_adam_step_f32 if p.dtype == np.float32 else _lib.tgl_adam_step_f64
    fn(_ptr(p), _ptr(g), _ptr(m), _ptr(v), p.size, float(lr), float(beta1), float(beta2),
       float(eps), float(weight_decay), 1 if decoupled else 0,
       float(lr) / (1.0 - float(beta1) ** int(step)),
       1.0 / math.sqrt(1.0 - float(beta2) ** int(step)), _num_threads)


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
    if _backend == "numpy":
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
           _buffer(ctype, out), n, _num_threads)
    return out
