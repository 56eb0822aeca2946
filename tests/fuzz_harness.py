"""Running and judging the calls of tests/test_fuzz_public_api.py (drawn by ``fuzz_kinds``).

For one call, ``fuzz_kinds.draw_call`` draws a valid value for every parameter -- or, in about
half of the calls, replaces one of them by a value that is certainly wrong (``None``, a string,
NaN for a learning rate, a dim out of range, ...). ``check_call`` runs the call under a time limit and returns a description of what went wrong,
or None. Acceptable outcomes:
* a result (compared with a NumPy reference where one is given; else only sanity-checked), but
  not when a certainly-wrong value was passed: that one must be refused;
* a ValueError/TypeError/RuntimeError/IndexError whose message names the function (or one of
  its aliases), raised by tinygrad_lite itself -- not one NumPy raised from deep inside.
Everything else is a failure: another exception class, a NumPy error passed through, a NumPy
warning leaking to the user (PyTorch computes NaN/Inf silently; so must we), a hang.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import warnings

import numpy as np

from fuzz_kinds import Call
from tinygrad_lite import Tensor

ALLOWED_ERRORS = (ValueError, TypeError, RuntimeError, IndexError)
NUMPY_DIR = os.path.dirname(np.__file__)
CALL_SECONDS = 5      # a call on these tiny inputs that takes longer is hung
HARD_SECONDS = 60     # a hang inside C (where SIGALRM cannot interrupt) ends the process


class CallTimeout(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in the code eats it."""


def snapshot(value):
    """The arrays behind a Tensor (or a list of them) as they are before the call."""
    if isinstance(value, Tensor):
        return value.data.copy()
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Tensor) for v in value):
        return [v.data.copy() for v in value]
    return value


RAISES = object()  # a reference's answer for "PyTorch raises here"


def run_guarded(fn, args, kwargs):
    """fn(*args, **kwargs) with warnings recorded and a time limit; returns (result, warnings)."""
    def on_alarm(signum, frame):
        raise CallTimeout(f"no answer after {CALL_SECONDS} s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    faulthandler.dump_traceback_later(HARD_SECONDS, exit=True)
    signal.setitimer(signal.ITIMER_REAL, CALL_SECONDS)
    try:
        # NumPy's default error state, as a user has it (underflow is silent there)
        with warnings.catch_warnings(record=True) as caught, np.errstate(
                divide="warn", over="warn", invalid="warn", under="ignore"):
            warnings.simplefilter("always")
            result = fn(*args, **kwargs)
        return result, caught
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, old)


def _innermost_file(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename if tb is not None else ""


def judge_exception(exc: BaseException, names) -> str | None:
    """None when ``exc`` is a clear error of ours naming one of ``names``; else what is wrong."""
    where = _innermost_file(exc)
    text = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    if isinstance(exc, CallTimeout):
        return f"hang: {exc}"
    if where.startswith(NUMPY_DIR) or type(exc).__module__.startswith("numpy"):
        return f"NumPy error passed through from {os.path.relpath(where, NUMPY_DIR)}: {text}"
    if not isinstance(exc, ALLOWED_ERRORS):
        return f"wrong exception class {text} (raised in {os.path.basename(where)})"
    if not any(n.lower() in str(exc).lower() for n in names):
        return f"message does not name the function (expected one of {sorted(names)}): {text}"
    return None


def judge_warnings(caught) -> str | None:
    leaked = [w for w in caught if issubclass(w.category, (RuntimeWarning, DeprecationWarning,
                                                            FutureWarning, np.exceptions.ComplexWarning))]
    if not leaked:
        return None
    w = leaked[0]
    return (f"NumPy warning leaked to the user: {w.category.__name__}: {w.message} "
            f"({os.path.basename(w.filename)}:{w.lineno})")


def sane_result(result) -> str | None:
    """Every Tensor in the result holds an ndarray of a supported dtype."""
    items = result if isinstance(result, (tuple, list)) else [result]
    for r in items:
        if isinstance(r, Tensor):
            if not isinstance(r.data, np.ndarray):
                return f"result Tensor holds a {type(r.data).__name__}, not an ndarray"
            if r.data.dtype.kind not in "fiub":
                return f"result Tensor has unsupported dtype {r.data.dtype}"
    return None


def check_backward(result, names) -> str | None:
    """If the result is in a graph, a backward pass through it must work or fail clearly."""
    if not (isinstance(result, Tensor) and result.requires_grad and result.dtype.kind == "f"):
        return None
    try:
        _, caught = run_guarded(lambda: result.sum().backward(), (), {})
    except BaseException as exc:  # noqa: BLE001 - judging any exception is the point
        problem = judge_exception(exc, set(names) | {"backward", "grad"})
        return problem and f"in backward(): {problem}"
    problem = judge_warnings(caught)
    return problem and f"in backward(): {problem}"


def check_call(call: Call, names, reference=None) -> str | None:
    """Run the call; None if the outcome is acceptable, else a one-line description."""
    args, kwargs = call.values()
    before = [snapshot(a) for a in args]
    try:
        result, caught = run_guarded(call.fn, args, kwargs)
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return judge_exception(exc, names)
    call.result = result
    problem = judge_warnings(caught) or sane_result(result)
    if problem:
        return problem
    if call.bad:
        return f"accepted an invalid argument silently (returned {type(result).__name__})"
    if reference is not None:
        problem = compare(result, reference, before, kwargs)
        if problem:
            return f"wrong result: {problem}"
    return check_backward(result, names)


# --------------------------------------------------------------------------------------------
# Comparing with a NumPy reference
# --------------------------------------------------------------------------------------------

TOLERANCE = {np.dtype(np.float16): 1e-2, np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-9}


def compare(result, reference, args, kwargs) -> str | None:
    """``reference(args, kwargs)`` (on the input arrays as they were before the call) gives the
    expected array, or a tuple of them; None from it means "no reference for this case"."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (np.mean of an empty slice warns)
            expected = reference(args, kwargs)
    except Exception as e:  # noqa: BLE001 - NumPy refuses where our op answered: look at it
        return f"the op answered but the NumPy reference raised {type(e).__name__}: {e}"

    if expected is None:
        return None
    if expected is RAISES:
        return "returned a result where PyTorch raises an error"
    if isinstance(expected, tuple):
        if not isinstance(result, (tuple, list)) or len(result) != len(expected):
            return (f"expected a tuple of {len(expected)} tensors (PyTorch's return value), got "
                    f"{type(result).__name__}")
        return next((p for r, e in zip(result, expected)
                     if (p := compare_one(r, e, args)) is not None), None)
    return compare_one(result, expected, args)


def compare_one(result, expected, args) -> str | None:
    if expected is None:
        return None
    if not isinstance(result, Tensor):
        return f"expected a Tensor, got {type(result).__name__}"
    got = result.data
    expected = np.asarray(expected)
    if got.shape != expected.shape:
        return f"shape {got.shape}, expected {expected.shape}"
    if got.dtype.kind != "f" or expected.dtype.kind != "f":
        if got.dtype.kind in "iub" and expected.dtype.kind == "f" and \
                not np.isfinite(expected).all():
            return None  # a float overflow cast to int: undefined, nothing to compare
        ok = np.array_equal(got.astype(np.float64), expected.astype(np.float64), equal_nan=True)
        return None if ok else f"values differ: got {got.tolist()}, expected {expected.tolist()}"
    with np.errstate(all="ignore"):
        expected = expected.astype(got.dtype)  # overflow to inf in float16 is then expected too
        scale = max([1.0] + [float(np.nanmax(np.abs(a[np.isfinite(a)]), initial=0))
                             for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"])
        tol = TOLERANCE.get(got.dtype, 1e-4) * scale * 8
    if not np.allclose(got, expected, rtol=tol, atol=tol, equal_nan=True):
        return f"values differ: got {got.tolist()}, expected {expected.tolist()}"
    return None


def nan_safe(x):
    """x as float64 for a reference computation (bool -> 0/1)."""
    return np.asarray(x).astype(np.float64)
