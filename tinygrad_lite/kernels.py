"""The bridge between the engine and the compute kernels.

Every heavy array computation the engine needs (matrix multiply, softmax, log-softmax and the
fused softmax-cross-entropy) goes through the functions in this module. They take and return
NumPy arrays and are the *only* place that calls into C.

Two backends implement them:

* ``"c"`` (the default) -- the hand-written kernels in ``csrc/``, compiled when the package is
  installed (cffi, API mode).
* ``"numpy"`` -- plain NumPy reference implementations. They are what the tests compare the C
  kernels against, and they are used only when chosen explicitly: ``TGL_BACKEND=numpy`` in the
  environment, ``set_backend("numpy")`` or ``with use_backend("numpy"): ...``.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

_BACKENDS = ("c", "numpy")
_backend = os.environ.get("TGL_BACKEND", "c").strip().lower() or "c"
if _backend not in _BACKENDS:
    raise ValueError(f"TGL_BACKEND must be one of {_BACKENDS}, got {_backend!r}")


def get_backend() -> str:
    """Name of the backend in use: ``"c"`` or ``"numpy"``."""
    return _backend


def set_backend(name: str) -> None:
    """Choose the backend for all kernels: ``"c"`` or ``"numpy"``."""
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {name!r}")
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
    counted rows and 0 for ignored rows (None when compute_grad is False).
    """
    n = logits.shape[0]
    keep = targets != ignore_index
    count = int(keep.sum())
    logp = reference_log_softmax(logits)
    rows = np.arange(n)
    safe_targets = np.where(keep, targets, 0)
    picked = logp[rows, safe_targets]
    loss = float(-(picked * keep).sum() / count) if count else float("nan")
    if not compute_grad:
        return loss, None
    grad = np.exp(logp)
    grad[rows, safe_targets] -= 1.0
    grad *= (keep / max(count, 1)).astype(logits.dtype)[:, None]
    return loss, grad.astype(logits.dtype, copy=False)


# --------------------------------------------------------------------------------------------
# Public kernel API (dispatches on the backend)
# --------------------------------------------------------------------------------------------

def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.matmul semantics (1-D promotion, batch broadcasting)."""
    return reference_matmul(a, b)


def softmax(x: np.ndarray) -> np.ndarray:
    return reference_softmax(x)


def log_softmax(x: np.ndarray) -> np.ndarray:
    return reference_log_softmax(x)


def softmax_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return reference_softmax_backward(y, dy)


def log_softmax_backward(y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return reference_log_softmax_backward(y, dy)


def cross_entropy(logits: np.ndarray, targets: np.ndarray, ignore_index: int = -100,
                  compute_grad: bool = True):
    return reference_cross_entropy(logits, targets, ignore_index, compute_grad)
