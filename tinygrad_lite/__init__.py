"""tinygrad_lite: a small reverse-mode autograd engine on NumPy, with C kernels for the hot ops.

Start reading at ``tensor.py`` (the Tensor), ``autograd.py`` (the graph walk) and ``ops/``
(every operation's forward and backward side by side).
"""

import numpy as np

from . import kernels  # noqa: F401  (raises a clear ImportError if the C kernels are not built)
from .autograd import (detect_anomaly, enable_grad, grad, is_grad_enabled, no_grad,
                       set_grad_enabled)
from .ops.elementwise import where
from .ops.movement import cat, stack
from .tensor import Tensor, get_rng, manual_seed

float16, float32, float64 = np.float16, np.float32, np.float64
int32, int64, bool_ = np.int32, np.int64, np.bool_

__version__ = "0.1.0"


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (Python floats become float32, ints int64)."""
    t = Tensor(data, dtype=dtype)
    if isinstance(data, (np.ndarray, Tensor)) and t.data is (data.data if isinstance(data, Tensor)
                                                             else data):
        t.data = t.data.copy()
    return t.requires_grad_(requires_grad) if requires_grad else t


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def zeros(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def full(shape, fill_value, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return Tensor(np.full(shape, fill_value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """Like np.arange; integers give int64, any float argument gives float32."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        dtype = np.float32 if any(isinstance(v, float) for v in (start, stop, step)) else np.int64
    return Tensor(np.arange(start, stop, step, dtype=dtype), requires_grad=requires_grad)


def eye(n: int, m: int | None = None, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return Tensor(np.eye(n, m, dtype=dtype), requires_grad=requires_grad)


def randn(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the package generator (see ``manual_seed``)."""
    data = get_rng().standard_normal(_shape(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from the package generator."""
    data = get_rng().random(_shape(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


__all__ = [
    "Tensor", "tensor", "zeros", "ones", "full", "arange", "randn", "rand", "eye", "zeros_like",
    "ones_like", "manual_seed", "get_rng", "no_grad", "enable_grad", "set_grad_enabled",
    "is_grad_enabled", "detect_anomaly", "grad", "where", "cat", "stack", "float16", "float32",
    "float64", "int32", "int64", "bool_",
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

_LAZY_SUBPACKAGES = ("nn", "optim", "data", "testing", "train", "models", "text")


def __getattr__(name: str):
    """Import a subpackage (``tg.nn``, ``tg.optim``, ``tg.train``, ...) on first access; any
    other unknown name is an AttributeError, as usual."""
    if name in _LAZY_SUBPACKAGES:
        import importlib
        return importlib.import_module(f".{name}", __name__)  # also caches it as an attribute
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY_SUBPACKAGES))
