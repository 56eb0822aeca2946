"""Evaluation metrics on predictions and targets (Tensors or arrays); each returns a float.

They are for reporting, not for training: no graph is built and nothing is differentiated.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor


def _pair(pred, target, name: str):
    pred = np.asarray(pred.data if isinstance(pred, Tensor) else pred, dtype=np.float64)
    target = np.asarray(target.data if isinstance(target, Tensor) else target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"{name}: predictions of shape {pred.shape} and targets of shape "
                         f"{target.shape} differ")
    if pred.size == 0:
        raise ValueError(f"{name}: no samples")
    return pred, target


def mse(pred, target) -> float:
    """mean((pred - target)^2)"""
    pred, target = _pair(pred, target, "mse")
    return float(np.mean((pred - target) ** 2))


def rmse(pred, target) -> float:
    """sqrt(mean((pred - target)^2))"""
    return float(np.sqrt(mse(pred, target)))


def mae(pred, target) -> float:
    """mean(|pred - target|)"""
    pred, target = _pair(pred, target, "mae")
    return float(np.mean(np.abs(pred - target)))


def r2(pred, target) -> float:
    """1 - sum((target - pred)^2) / sum((target - mean(target))^2): 1 is perfect, 0 is as good as
    predicting the mean, negative is worse than that."""
    pred, target = _pair(pred, target, "r2")
    total = np.sum((target - target.mean()) ** 2)
    if total == 0:
        raise ValueError("r2: the targets are constant, so R² is undefined")
    return float(1.0 - np.sum((target - pred) ** 2) / total)


def accuracy(pred, target) -> float:
    """Fraction of correct class predictions. ``pred`` is class ids of the same shape as
    ``target``, or scores/logits with one more (last) axis, whose argmax is taken."""
    pred = pred.data if isinstance(pred, Tensor) else np.asarray(pred)
    target = target.data if isinstance(target, Tensor) else np.asarray(target)
    if pred.ndim == target.ndim + 1:
        pred = pred.argmax(axis=-1)
    if pred.shape != target.shape:
        raise ValueError(f"accuracy: predictions of shape {pred.shape} do not match targets of "
                         f"shape {target.shape} (give class ids of that shape, or scores with "
                         f"one extra last axis)")
    if target.size == 0:
        raise ValueError("accuracy: no samples")
    return float(np.mean(pred == target))
