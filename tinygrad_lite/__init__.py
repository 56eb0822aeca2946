"""tinygrad_lite: a small reverse-mode autograd engine on NumPy, with C kernels for the hot ops.

Start reading at ``tensor.py`` (the Tensor), ``autograd.py`` (the graph walk) and ``ops/``
(every operation's forward and backward side by side).
"""

from __future__ import annotations

import builtins

import numpy as np

from . import kernels  # noqa: F401  (raises a clear ImportError if the C kernels are not built)
from .autograd import (detect_anomaly, enable_grad, grad, is_grad_enabled, no_grad,
                       set_grad_enabled)
from .ops.elementwise import where
from .ops.movement import cat, stack
from .ops.random import multinomial, randint
from .tensor import Tensor, as_tensor, from_numpy, get_rng, manual_seed

float16, float32, float64 = np.float16, np.float32, np.float64
int8, int16, int32, int64, uint8, bool_ = np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_
# PyTorch's dtype names: torch.float is float32, torch.int is int32, torch.long is int64. They
# shadow the builtins inside this module, so its code spells those builtins.float etc.
half, float, double = np.float16, np.float32, np.float64
short, int, long, bool = np.int16, np.int32, np.int64, np.bool_

__version__ = "0.1.0"


def tensor(data, dtype=None, requires_grad: builtins.bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (Python floats become float32, ints int64)."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def _new(array: np.ndarray, requires_grad: builtins.bool) -> Tensor:
    """Wrap an array made here (nobody else holds it, so there is nothing to copy)."""
    t = as_tensor(array)
    return t.requires_grad_(True) if requires_grad else t


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def zeros(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return _new(np.zeros(_shape(shape), dtype=dtype), requires_grad)


def ones(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return _new(np.ones(_shape(shape), dtype=dtype), requires_grad)


def full(shape, fill_value, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    shape = (shape,) if isinstance(shape, builtins.int) else tuple(shape)
    return _new(np.full(shape, fill_value, dtype=dtype), requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """Like np.arange; integers give int64, any float argument gives float32."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        dtype = np.float32 if any(isinstance(v, builtins.float) for v in (start, stop, step)) \
            else np.int64
    return _new(np.arange(start, stop, step, dtype=dtype), requires_grad)


def eye(n, m=None, dtype=np.float32, requires_grad: builtins.bool = False) -> Tensor:
    return _new(np.eye(n, m, dtype=dtype), requires_grad)


def randn(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the package generator (see ``manual_seed``)."""
    data = get_rng().standard_normal(_shape(shape)).astype(dtype)
    return _new(data, requires_grad)


def rand(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from the package generator."""
    data = get_rng().random(_shape(shape)).astype(dtype)
    return _new(data, requires_grad)


def _tensor_input(input, op: str) -> Tensor:
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be a Tensor, not "
                        f"{type(input).__name__} (wrap it with tg.tensor(...))")
    return input


def tril(input: Tensor, diagonal: builtins.int = 0) -> Tensor:
    """The lower triangle of the last two dims (differentiable; see Tensor.tril)."""
    return _tensor_input(input, "tril").tril(diagonal)


def triu(input: Tensor, diagonal: builtins.int = 0) -> Tensor:
    """The upper triangle of the last two dims (differentiable; see Tensor.triu)."""
    return _tensor_input(input, "triu").triu(diagonal)


def topk(input: Tensor, k: builtins.int, dim: builtins.int = -1, largest: builtins.bool = True,
         sorted: builtins.bool = True):
    """The named tuple (values, indices) of the k largest (or smallest) along dim."""
    return _tensor_input(input, "topk").topk(k, dim, largest, sorted)


__all__ = [
    "Tensor", "tensor", "zeros", "ones", "full", "arange", "randn", "rand", "eye", "zeros_like",
    "ones_like", "manual_seed", "get_rng", "no_grad", "enable_grad", "set_grad_enabled",
    "is_grad_enabled", "detect_anomaly", "grad", "where", "cat", "stack", "float16", "float32",
    "float64", "int32", "int64", "bool_", "int8", "int16", "uint8", "half", "float", "double",
    "short", "int", "long", "bool", "as_tensor", "from_numpy", "tril", "triu", "topk",
    "multinomial", "randint",
]


# --------------------------------------------------------------------------------------------
# Subpackages as attributes, as in PyTorch: `import tinygrad_lite as tg; tg.optim.AdamW(...)`
# works without importing tinygrad_lite.optim first. autograd, kernels and ops are imported
# above already; the others are imported on first use by the module-level __getattr__ below
# (PEP 562), so `import tinygrad_lite` does not pay for the ones a script never touches
# (nn + optim + data + testing add ~20 ms, train/models/text pull in checkpoint files, progress
# bars, plots and the tokenizer). After the first access the subpackage is an ordinary
# attribute.
# --------------------------------------------------------------------------------------------

from . import autograd, ops  # noqa: E402,F401  (already loaded; named here to be explicit)

_LAZY_SUBPACKAGES = ("nn", "optim", "data", "testing", "train", "models", "text", "viz",
                     "trace")


def __getattr__(name: str):
    """Import a subpackage (``tg.nn``, ``tg.optim``, ``tg.train``, ...) on first access; any
    other unknown name is an AttributeError, as usual."""
    if name in _LAZY_SUBPACKAGES:
        import importlib
        return importlib.import_module(f".{name}", __name__)  # also caches it as an attribute
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY_SUBPACKAGES))
