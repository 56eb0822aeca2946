"""The bridge between the engine and the compute kernels.

Every heavy array computation the engine needs (matrix multiply, softmax, log-softmax and the
fused softmax-cross-entropy) goes through the functions of this package. They take and return
NumPy arrays and are the *only* place that calls into C.

Two backends implement them:

* ``"c"`` (the default) -- the hand-written kernels in ``csrc/``, compiled when the package is
  installed (cffi, API mode) into the extension module ``tinygrad_lite._C``.
* ``"numpy"`` -- plain NumPy reference implementations. They are what the tests compare the C
  kernels against, and they are used only when chosen explicitly: ``TGL_BACKEND=numpy`` in the
  environment, ``set_backend("numpy")`` or ``with use_backend("numpy"): ...``.

If the C module is missing and the "c" backend is in use, importing this package raises an
ImportError that says how to build it -- there is no silent fallback to NumPy. (The usual way to
get there: running Python in the repository root after a non-editable ``pip install .``: the
source folder, which has no compiled module, shadows the installed package; the error says so.)

Why so much checking? C has no bounds checks: a wrong stride, a short buffer or an out-of-range


class index would read or write memory it does not own and crash the process (or, worse, give
wrong numbers). So every C call is preceded by Python checks of dtype, shape, strides,
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
an earlier output is gone (see ``memory._empty``); ``empty_cache()`` releases the unused ones.

One performance rule for the "c" path: it never calls NumPy's BLAS (``np.dot``, ``np.matmul``,
``np.einsum``...). OpenBLAS worker threads keep spinning for ~0.1 s after a call and would steal
the cores our OpenMP kernels are about to use. Elementwise NumPy is fine.

The modules, one concept each:

* ``runtime``   -- loading the C module (and the error when it is not built), the backend, the
  thread count, fork safety and the GEMM code path: the state the others read at call time;
* ``memory``    -- output arrays, and the reused memory maps behind large ones;
* ``operands``  -- the input checks every kernel shares, and the pointers handed to C;
* ``reference`` -- the NumPy reference implementations (the "numpy" backend);
* ``matrix``    -- matmul (with its lean fast path for the common case), gemm and linear;
* ``lowp``      -- matmul_lowp: bfloat16 / float16 inputs, float32 accumulation and output;
* ``rowwise``   -- softmax, log_softmax, their backward passes and the fused cross-entropy;
* ``adam``      -- the fused Adam / AdamW update.
"""

from __future__ import annotations

from .adam import adam_step
from .lowp import matmul_lowp
from .matrix import gemm, linear, matmul, naive_gemm
from .memory import empty_cache
from .reference import (reference_adam_step, reference_cross_entropy, reference_log_softmax,
                        reference_log_softmax_backward, reference_matmul, reference_matmul_lowp,
                        reference_softmax, reference_softmax_backward)
from .rowwise import cross_entropy, log_softmax, log_softmax_backward, softmax, softmax_backward
from .runtime import (c_available, force_portable_gemm, gemm_path, get_backend, get_num_threads,
                      set_backend, set_num_threads, use_backend)

__all__ = [
    "c_available", "get_backend", "set_backend", "use_backend", "get_num_threads",
    "set_num_threads", "force_portable_gemm", "gemm_path", "empty_cache",
    "matmul", "gemm", "naive_gemm", "linear", "matmul_lowp",
    "softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "cross_entropy",
    "adam_step",
    "reference_matmul", "reference_matmul_lowp", "reference_softmax", "reference_log_softmax",
    "reference_softmax_backward", "reference_log_softmax_backward", "reference_cross_entropy",
    "reference_adam_step",
]
