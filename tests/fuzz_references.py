"""NumPy references for the core ops of tests/test_fuzz_public_api.py: each takes the input
arrays as they were before the call (``args``; a Tensor argument is its array) and the keyword
arguments, and gives the expected array, a tuple of them (None entries are not compared), None
("no reference for this case") or ``RAISES`` (PyTorch refuses this input)."""

from __future__ import annotations

import numpy as np

from fuzz_harness import RAISES, nan_safe


def _opt(args, kwargs, position, *names, default=None):
    """An argument given at ``position`` or by one of ``names`` (PyTorch's name first)."""
    if len(args) > position:
        return args[position]
    return next((kwargs[n] for n in names if n in kwargs), default)


def _dim(args, kwargs, default=None):
    return _opt(args, kwargs, 1, "dim", "axis", default=default)


def _keep(kwargs) -> bool:
    return bool(kwargs.get("keepdim", kwargs.get("keepdims", False)))


def _unary(fn, bool_ok=True):
    return lambda a, k: None if not bool_ok and a[0].dtype == bool else fn(nan_safe(a[0]))


def _binary(fn):
    def reference(a, k):
        x, y = a[0], a[1]
        if x.dtype == bool or getattr(y, "dtype", None) == bool or isinstance(y, bool):
            return None  # PyTorch's bool arithmetic rules differ per op; not fuzzed here
        if isinstance(y, (int, float)) and x.dtype.kind == "f":
            # PyTorch's promotion: a Python number does not widen a float tensor; it is
            # converted to the tensor's dtype first (float32 inf * -2.2e-308 -> inf * -0 = nan)
            with np.errstate(all="ignore"):
                y = np.asarray(y).astype(x.dtype)
        elif isinstance(y, float) and x.dtype.kind in "iu":
            # an integer tensor with a Python float computes in the default float32, the number
            # converted too (int 0 / -9.9e-172 -> 0 / -0 = nan)
            with np.errstate(all="ignore"):
                x, y = x.astype(np.float32), np.asarray(y).astype(np.float32)
        return fn(nan_safe(x), nan_safe(y))
    return reference


def _reduce(fn, needs_items=False):
    def reference(a, k):
        x, axis = a[0], _dim(a, k)
        axis = tuple(axis) if isinstance(axis, list) else axis
        count = x.size if axis is None else int(np.prod([x.shape[i] for i in np.atleast_1d(
            axis)])) if x.ndim else 1
        if needs_items and count == 0:
            return RAISES
        if x.ndim == 0 and axis is not None:
            return None  # PyTorch allows dim 0/-1 on a 0-d tensor; either answer is fine
        return fn(nan_safe(x), axis, _keep(k))
    return reference


def _max_like(np_fn):
    def reference(a, k):
        x, axis = a[0], _dim(a, k)
        if x.size == 0 and (axis is None or x.ndim == 0 or x.shape[axis] == 0):
            return RAISES
        if axis is None or x.ndim == 0:  # (PyTorch has no keepdim without a dim)
            return None if axis is not None or _keep(k) else np_fn(nan_safe(x))
        return (np_fn(nan_safe(x), axis=axis, keepdims=_keep(k)), None)  # indices: ties differ
    return reference


def _var(a, k, std=False):
    x, axis = a[0], _dim(a, k)
    if x.ndim == 0 and axis is not None:
        return None  # PyTorch allows dim 0/-1 on a 0-d tensor; either answer is fine
    correction = k.get("correction", 0 if k.get("unbiased") is False else 1)
    count = x.size if axis is None else int(np.prod([x.shape[i] for i in np.atleast_1d(axis)]))
    if count - correction <= 0:
        return None
    v = np.var(nan_safe(x), axis=axis, ddof=correction, keepdims=_keep(k))
    return np.sqrt(v) if std else v


def _softmax(log):
    def reference(a, k):
        x = a[0]
        if x.dtype.kind != "f" or x.ndim == 0 or not np.isfinite(x).all():
            return None
        axis = _opt(a, k, 1, "dim", "axis", default=-1)
        x = nan_safe(x)
        shifted = x - x.max(axis=axis, keepdims=True) if x.size else x
        logp = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        return logp if log else np.exp(logp)
    return reference


def _logsumexp(x, axis, keep):
    return None if not np.isfinite(x).all() else np.log(np.exp(x).sum(axis=axis, keepdims=keep))


def _argmax(np_fn):
    def reference(a, k):
        x, axis = a[0], _dim(a, k)
        if x.size == 0:
            return RAISES
        if x.ndim == 0 or (axis is None and _keep(k)):
            return None
        return np_fn(x, axis=axis, keepdims=_keep(k))
    return reference


def _joined(np_fn):
    def reference(a, k):
        arrays = a[0]
        if not isinstance(arrays, list) or len({x.shape for x in arrays}) != 1:
            return None
        axis = _opt(a, k, 1, "dim", "axis", default=0)
        return np_fn([nan_safe(x) for x in arrays], axis=axis)
    return reference


def _shape_args(rest):
    return tuple(rest[0]) if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else tuple(rest)


def _transpose(a, k):
    d0, d1 = _opt(a, k, 1, "dim0"), _opt(a, k, 2, "dim1")
    if a[0].ndim == 0:
        return None  # PyTorch allows transpose(0, -1) of a 0-d tensor; either answer is fine
    return a[0].T if d0 is None and d1 is None else (
        np.swapaxes(a[0], d0, d1) if d0 is not None and d1 is not None else None)


def _flatten(a, k):
    x = a[0]
    if x.ndim == 0:
        return x.reshape(1)
    start = _opt(a, k, 1, "start_dim", default=0) % x.ndim
    end = _opt(a, k, 2, "end_dim", default=-1) % x.ndim
    if start > end:
        return None
    return x.reshape(x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:])


def _squeeze(a, k):
    x, axis = a[0], _dim(a, k)
    if axis is None:
        return np.squeeze(x)
    return np.squeeze(x, axis) if x.ndim and x.shape[axis] == 1 else x


def _sign(x):
    # PyTorch's sign of NaN is 0 on its vectorised CPU path and NaN elsewhere: not pinned here
    return None if np.isnan(x).any() else np.sign(x)


def _softplus(a, k):
    """torch's softplus: x where beta * x > threshold, else log(1 + exp(beta * x)) / beta."""
    x = a[0]
    beta, threshold = _opt(a, k, 1, "beta", default=1.0), _opt(a, k, 2, "threshold", default=20.0)
    if x.dtype.kind != "f":
        return None  # PyTorch refuses integer input; a clean refusal is judged elsewhere
    x = nan_safe(x)
    scaled = x * beta
    return np.where(scaled > threshold, x, np.logaddexp(0, scaled) / beta)


def _relu6(x):
    return np.where(np.isnan(x), x, np.clip(x, 0, 6))


# The smooth activations, in PyTorch's formulas (so silu(-inf) = -inf / inf = NaN, as there)
ACTIVATIONS = {
    "sign": _sign, "relu6": _relu6,
    "hardswish": lambda x: x * _relu6(x + 3) / 6,
    "silu": lambda x: x / (1 + np.exp(-x)),
    "mish": lambda x: x * np.tanh(np.logaddexp(0, x)),
}


def _amax_like(np_fn):
    """amax/amin: dim=() (the default) means every dim, as in PyTorch; no indices."""
    def reference(a, k):
        x, axis = a[0], _dim(a, k, default=())
        axis = None if axis in ((), []) else tuple(axis) if isinstance(axis, list) else axis
        if x.ndim == 0 and axis is not None:
            return None
        count = x.size if axis is None else int(np.prod([x.shape[i] for i in np.atleast_1d(
            axis)]))
        return RAISES if count == 0 else np_fn(nan_safe(x), axis=axis, keepdims=_keep(k))
    return reference


UNARY = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos,
         "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
         "relu": lambda x: np.where(np.isnan(x), x, np.maximum(x, 0)), "abs": np.abs, "__neg__": np.negative}
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
          "maximum": np.maximum, "minimum": np.minimum}
BINARY_DUNDERS = {"__add__": "add", "__sub__": "sub", "__mul__": "mul", "__truediv__": "div"}

TENSOR_REFERENCES = {
    **{name: _unary(fn, bool_ok=name not in ("abs", "__neg__")) for name, fn in UNARY.items()},
    **{name: _binary(fn) for name, fn in BINARY.items()},
    **{dunder: _binary(BINARY[name]) for dunder, name in BINARY_DUNDERS.items()},
    "matmul": lambda a, k: None if a[0].dtype == bool or not isinstance(a[1], np.ndarray)
    or a[1].dtype == bool else np.matmul(nan_safe(a[0]), nan_safe(a[1])),
    "sum": _reduce(lambda x, ax, keep: np.sum(x, axis=ax, keepdims=keep)),
    "mean": _reduce(lambda x, ax, keep: np.mean(x, axis=ax, keepdims=keep)),
    "logsumexp": _reduce(_logsumexp),
    "var": _var, "std": lambda a, k: _var(a, k, std=True),
    "max": _max_like(np.max), "min": _max_like(np.min),
    "argmax": _argmax(np.argmax), "argmin": _argmax(np.argmin),
    "softmax": _softmax(log=False), "log_softmax": _softmax(log=True),
    "reshape": lambda a, k: a[0].reshape(_shape_args(a[1:])),
    "permute": lambda a, k: np.transpose(a[0], _shape_args(a[1:])),
    "transpose": _transpose, "flatten": _flatten, "squeeze": _squeeze,
    "unsqueeze": lambda a, k: np.expand_dims(a[0], _dim(a, k)),
}
TENSOR_REFERENCES.update({name: _unary(fn, bool_ok=name == "sign")
                          for name, fn in ACTIVATIONS.items()})
TENSOR_REFERENCES.update({"softplus": _softplus, "amax": _amax_like(np.max),
                          "amin": _amax_like(np.min)})
TENSOR_REFERENCES["__matmul__"] = TENSOR_REFERENCES["matmul"]
TENSOR_REFERENCES["view"] = TENSOR_REFERENCES["reshape"]
FUNCTIONAL_REFERENCES = {"softmax": _softmax(log=False), "log_softmax": _softmax(log=True),
                         "relu": _unary(UNARY["relu"]), "sigmoid": _unary(UNARY["sigmoid"]),
                         "tanh": _unary(np.tanh), "softplus": _softplus,
                         **{name: _unary(fn, bool_ok=False) for name, fn in ACTIVATIONS.items()
                            if name != "sign"}}
TOP_LEVEL_REFERENCES = {"cat": _joined(np.concatenate), "stack": _joined(np.stack)}
