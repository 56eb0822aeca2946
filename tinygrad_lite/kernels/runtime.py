"""Loading the C module and the settings that decide how the kernels run.

Everything here is state the other modules of the package read at call time: the loaded C
module (``_ffi``, ``_lib``), the backend in use (``_backend``), the thread count
(``_num_threads``) and the GEMM code path. The environment variables TGL_BACKEND,
TGL_NUM_THREADS and TGL_GEMM_PORTABLE are read (and checked) when this module is imported; see
the docstring of ``tinygrad_lite.kernels`` for what each one does and for the "Fork" rule.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.machinery
import os
import sys

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
    from .. import _C  # type: ignore[attr-defined]

    _ffi, _lib = _C.ffi, _C.lib
except ImportError as exc:  # not built (or built for another Python)
    _load_error = exc

# The tinygrad_lite/ folder, where the compiled module _C lives (this file is in kernels/).
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    method) only 1 is allowed: see "Fork" in the docstring of ``tinygrad_lite.kernels``.
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
