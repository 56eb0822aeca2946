"""Shared test configuration for the whole suite.

* Imports the installed tinygrad_lite (or the checkout, when it is not installed). Without the
  compiled kernels the import fails and says how to build them -- unless ``TGL_BACKEND=numpy``
  is set explicitly, in which case the "c" cases of the ``backend`` fixture are skipped.
  ``python -m pytest`` from the root after a non-editable install tests the installed copy, and
  says so (see ``_test_the_installed_copy``).
* Registers hypothesis profiles: ``default`` (modest example counts, no deadline -- the suite
  must stay fast on 2 cores and timing is never asserted) and ``ci`` (the same, derandomized).
  Choose one with ``HYPOTHESIS_PROFILE=ci``.
* Fixtures: ``backend`` (runs a test once per kernel backend, "c" and "numpy"; "c" is skipped
  with a reason when the C module is not built) and ``rng`` (a seeded NumPy generator). An
  autouse fixture restores the global grad/anomaly modes and the kernel backend after every
  test, so one failing test cannot leak ``no_grad`` into the next.
"""

from __future__ import annotations

import glob
import importlib.machinery
import importlib.util
import inspect
import os
import sys

import numpy as np
import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _has_c_module(folder: str) -> bool:
    """Is a compiled tinygrad_lite._C in this package folder?"""
    return any(glob.glob(os.path.join(glob.escape(folder), "_C" + suffix))
               for suffix in importlib.machinery.EXTENSION_SUFFIXES)


def _c_module_present() -> bool:
    """Is the compiled tinygrad_lite._C next to the package? (Found without importing it, since
    importing tinygrad_lite without the module and without TGL_BACKEND=numpy raises.)"""
    spec = importlib.util.find_spec("tinygrad_lite")  # top-level: does not import the package
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(_has_c_module(folder) for folder in spec.submodule_search_locations)


def _test_the_installed_copy() -> str | None:
    """After a non-editable `pip install ".[test]"`, `python -m pytest` from the repository root
    puts the root first on sys.path, so `import tinygrad_lite` would find the source folder,
    which has no compiled kernels, instead of the installed package the user meant to test. In
    exactly that case (checkout without the module, an installed copy with it elsewhere on the
    path) take the root off sys.path and return a note that the run prints; else None."""
    def is_root(entry: str) -> bool:
        return os.path.realpath(entry or os.getcwd()) == os.path.realpath(_ROOT)

    checkout = os.path.join(_ROOT, "tinygrad_lite")
    if not any(is_root(e) for e in sys.path) or _has_c_module(checkout):
        return None
    installed = [os.path.join(e or os.getcwd(), "tinygrad_lite") for e in sys.path
                 if not is_root(e)]
    installed = [folder for folder in installed if _has_c_module(folder)]
    if not installed:
        return None  # nothing else to test: the import below fails and says how to build
    sys.path[:] = [e for e in sys.path if not is_root(e)]
    return (f"testing the installed tinygrad_lite in {installed[0]}; the repository root "
            f"{_ROOT} was taken off sys.path (`python -m` puts it first) because its "
            f"tinygrad_lite/ has no compiled kernels (use `pip install -e .` to test the "
            f"source folder itself)")


_INSTALLED_COPY_NOTE = _test_the_installed_copy()
if importlib.util.find_spec("tinygrad_lite") is None:  # not installed: use the checkout
    sys.path.insert(0, _ROOT)


# No silent fallback: without the compiled kernels, importing tinygrad_lite below fails with the
# message that says how to build them, unless TGL_BACKEND=numpy was chosen explicitly.
HAS_C_MODULE = _c_module_present()

import tinygrad_lite  # noqa: E402
from tinygrad_lite import autograd, kernels  # noqa: E402

try:
    from hypothesis import HealthCheck, settings

    _common = dict(deadline=None, max_examples=30, print_blob=True,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.function_scoped_fixture])
    settings.register_profile("default", **_common)
    settings.register_profile("ci", derandomize=True, **_common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
except ImportError:  # pragma: no cover - hypothesis is part of the test extra
    pass


BACKENDS = ["c", "numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test under each kernel backend ("c" = compiled kernels, "numpy" = reference)."""
    name = request.param
    if name == "c" and not kernels.c_available():
        pytest.skip("C kernels not built (tinygrad_lite._C is missing); run `pip install -e .` "
                    "to test the C backend")
    with kernels.use_backend(name):
        yield name


@pytest.fixture
def c_kernels(monkeypatch):
    """For the kernel tests: run on the C backend, check that every pointer the bridge hands to
    C is aligned for its element type (x86 forgives unaligned float loads, so without this only
    a sanitizer would notice), and put the backend and thread count back afterwards."""
    if not kernels.c_available():
        pytest.skip("C kernels not built (tinygrad_lite._C is missing); run `pip install -e .`")
    backend_name, threads = kernels.get_backend(), kernels.get_num_threads()
    real_ptr = kernels.operands._ptr

    def checked_ptr(x, offset_bytes=0):
        addr = x.ctypes.data + offset_bytes
        assert addr % x.itemsize == 0, f"unaligned pointer to C: shape {x.shape}, {x.strides}"
        return real_ptr(x, offset_bytes)

    real_buffer = kernels.matrix._buffer

    def checked_buffer(ctype, x):
        assert x.flags.c_contiguous and x.ctypes.data % x.itemsize == 0, \
            f"unaligned or strided buffer to C: shape {x.shape}, strides {x.strides}"
        return real_buffer(ctype, x)

    # Each module of the package imports the helpers it calls by name (`from .operands import
    # _ptr`), so the checked versions go into every module that has them.
    for module in vars(kernels).values():
        if not inspect.ismodule(module):
            continue
        for name, checked in (("_ptr", checked_ptr), ("_buffer", checked_buffer)):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, checked)
    kernels.set_backend("c")
    yield
    kernels.set_backend(backend_name)
    kernels.set_num_threads(threads)


def pytest_report_header(config):
    return [f"tinygrad_lite: {_INSTALLED_COPY_NOTE}"] if _INSTALLED_COPY_NOTE else []


def pytest_terminal_summary(terminalreporter):
    if _INSTALLED_COPY_NOTE:  # also under -q, which hides the header
        terminalreporter.write_line(f"note: {_INSTALLED_COPY_NOTE}")


@pytest.fixture
def rng():
    """A seeded NumPy generator for test data."""
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _restore_global_modes():
    """Put the module-level switches back after each test (even a failing one)."""
    grad_enabled, anomaly = autograd._grad_enabled, autograd._anomaly_enabled
    backend_name = kernels.get_backend()
    yield
    autograd._grad_enabled, autograd._anomaly_enabled = grad_enabled, anomaly
    if kernels.get_backend() != backend_name:
        kernels.set_backend(backend_name)


__all__ = ["HAS_C_MODULE", "BACKENDS", "tinygrad_lite"]  # tinygrad_lite: imported above on purpose
