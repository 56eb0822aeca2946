"""The NumPy reference implementations: the "numpy" backend.

Each computes what its C kernel computes, in plain NumPy. They are what the tests compare the C
kernels against, and what runs with ``TGL_BACKEND=numpy`` or ``use_backend("numpy")``.
"""

from __future__ import annotations

import math

import numpy as np


def reference_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(a, b)


def reference_matmul_lowp(a: np.ndarray, b: np.ndarray, *, bias=None, out=None,
                          accumulate: bool = False) -> np.ndarray:
    """``a @ b (+ bias)`` for bfloat16/float16 a and b, in float32: the inputs widened (exactly)
    to float32 and multiplied by NumPy's float32 matmul; written into (or, with accumulate,
    added onto) the float32 ``out`` when given."""
    prod = np.matmul(a.astype(np.float32), b.astype(np.float32))
    if bias is not None:
        prod += bias
    if out is None:
        return prod
    if accumulate:
        out += prod
    else:
        out[...] = prod
    return out


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
