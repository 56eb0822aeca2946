"""The fused Adam / AdamW update: one pass over memory for the parameter and its moments."""

from __future__ import annotations

import itertools
import math

import numpy as np

from . import runtime  # runtime._backend and runtime._num_threads change: read at call time
from .operands import _CTYPE, _aligned_copy, _ptr, _same_dtype
from .reference import reference_adam_step

_lib = runtime._lib  # assigned, not imported: see operands.py


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
    if runtime._backend == "numpy":
        reference_adam_step(p, g, m, v, lr, beta1, beta2, eps, weight_decay, decoupled, step)
        return
    if not (g.flags.c_contiguous and g.dtype.isnative and g.flags.aligned):
        g = _aligned_copy(g)  # the gradient is only read: a contiguous copy will do
    fn = _lib.tgl_adam_step_f32 if p.dtype == np.float32 else _lib.tgl_adam_step_f64
    fn(_ptr(p), _ptr(g), _ptr(m), _ptr(v), p.size, float(lr), float(beta1), float(beta2),
       float(eps), float(weight_decay), 1 if decoupled else 0,
       float(lr) / (1.0 - float(beta1) ** int(step)),
       1.0 / math.sqrt(1.0 - float(beta2) ** int(step)), runtime._num_threads)
