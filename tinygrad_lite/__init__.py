"""tinygrad_lite: a small reverse-mode autograd engine on NumPy, with C kernels for the hot ops.

Start reading at ``tensor_base.py`` and ``tensor.py`` (the Tensor), ``autograd.py`` (the graph
walk) and ``ops/`` (every operation's forward and backward side by side).
"""

from __future__ import annotations

import builtins
import math
import numbers

import numpy as np

from . import kernels  # noqa: F401  (raises a clear ImportError if the C kernels are not built)
from .autograd import (detect_anomaly, enable_grad, grad, is_grad_enabled, no_grad,
                       set_grad_enabled)
from .ops.elementwise import where
from .ops.movement import cat, stack
from .ops.random import multinomial, randint
from . import tensor as _tensor
from .checks import check_dtype, check_flag, check_number, check_shape, check_tensor
from .tensor import Tensor, as_tensor, from_numpy, get_rng

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


def _new(array: np.ndarray, requires_grad, op: str) -> Tensor:
    """Wrap an array made here (nobody else holds it, so there is nothing to copy)."""
    if check_flag(op, "requires_grad", requires_grad) and array.dtype.kind != "f":
        raise RuntimeError(f"{op}: only Tensors of floating point dtype can require "
                           f"gradients; dtype is {array.dtype} (pass dtype=tg.float32, or "
                           f"convert with .float())")
    t = as_tensor(array)
    return t.requires_grad_(True) if requires_grad else t


def zeros(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return _new(np.zeros(check_shape("zeros", shape), check_dtype("zeros", dtype)),
                requires_grad, "zeros")


def ones(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    return _new(np.ones(check_shape("ones", shape), check_dtype("ones", dtype)),
                requires_grad, "ones")


def _fill_value(value, dtype: np.dtype, op: str):
    """A fill value that ``dtype`` can hold exactly (NumPy would wrap or warn; torch raises)."""
    if isinstance(value, Tensor) and value.ndim == 0:
        value = value.item()
    if not isinstance(value, (numbers.Real, np.bool_)):
        raise TypeError(f"{op}: fill_value must be a real number (or bool), got {value!r} "
                        f"({type(value).__name__})")
    if dtype.kind in "iu" and not (math.isfinite(value) and
                                   np.iinfo(dtype).min <= value <= np.iinfo(dtype).max):
        raise RuntimeError(f"{op}: fill_value={value!r} cannot be converted to {dtype} "
                           f"without overflow")
    return value


def full(shape, fill_value, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """A tensor of ``shape`` (a tuple, or one int) filled with ``fill_value``."""
    shape = check_shape("full", (shape,) if isinstance(shape, (tuple, list)) else (shape,))
    dtype = check_dtype("full", dtype)
    with np.errstate(over="ignore"):  # a float too large for float16 becomes inf, as in NumPy
        array = np.full(shape, _fill_value(fill_value, dtype, "full"), dtype=dtype)
    return _new(array, requires_grad, "full")


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    t = check_tensor("zeros_like", "input", t)
    return _new(np.zeros(t.shape, check_dtype("zeros_like", t.dtype if dtype is None else dtype)),
                requires_grad, "zeros_like")


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    t = check_tensor("ones_like", "input", t)
    return _new(np.ones(t.shape, check_dtype("ones_like", t.dtype if dtype is None else dtype)),
                requires_grad, "ones_like")


def arange(start, stop=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """start, start + step, ... up to (not including) stop, as torch.arange: integers give
    int64, any float argument float32. A step of 0, a NaN or infinite bound, or a step that
    moves away from stop is a RuntimeError, as in torch (NumPy would return an empty range)."""
    if stop is None:
        start, stop = 0, start
    for name, value in (("start", start), ("end", stop), ("step", step)):
        check_number("arange", name, value, -math.inf)  # real and finite (bools count as ints)
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (stop - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and lower bound inconsistent with step sign "
                           f"(start={start}, end={stop}, step={step})")
    if dtype is None:
        dtype = np.float32 if any(isinstance(v, builtins.float) for v in (start, stop, step)) \
            else np.int64
    count = math.ceil((stop - start) / step)
    check_shape("arange", (count,))
    dtype = check_dtype("arange", dtype)
    try:
        array = np.arange(start, stop, step, dtype=dtype)
    except MemoryError:  # a tiny step: (stop - start) / step fits an int but not in memory
        raise RuntimeError(f"arange: cannot allocate {count} elements (start={start}, "
                           f"end={stop}, step={step}); use a larger step") from None
    return _new(array, requires_grad, "arange")


def eye(n, m=None, dtype=np.float32, requires_grad: builtins.bool = False) -> Tensor:
    """The n x m (n x n) identity matrix."""
    n = check_number("eye", "n", n, integer=True)
    m = n if m is None else check_number("eye", "m", m, integer=True)
    check_shape("eye", (n, m))
    return _new(np.eye(n, m, dtype=check_dtype("eye", dtype)), requires_grad, "eye")


def _random_dtype(op: str, dtype) -> np.dtype:
    dtype = check_dtype(op, dtype)
    if dtype.kind != "f":
        raise TypeError(f"{op}: samples from a continuous distribution need a floating-point "
                        f"dtype, got dtype={dtype} (use tg.randint for integers)")
    return dtype


def randn(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the package generator (see ``manual_seed``)."""
    dtype, shape = _random_dtype("randn", dtype), check_shape("randn", shape)
    return _new(get_rng().standard_normal(shape).astype(dtype), requires_grad, "randn")


def rand(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from the package generator."""
    dtype, shape = _random_dtype("rand", dtype), check_shape("rand", shape)
    return _new(get_rng().random(shape).astype(dtype), requires_grad, "rand")


def manual_seed(seed: builtins.int) -> None:
    """Seed the generator behind randn, rand, dropout and the layer initialisations. As in torch,
    the seed is an integer in [-2**63, 2**64), and a negative one is remapped to
    0xffff_ffff_ffff_ffff + seed (NumPy's generator takes no negative seeds)."""
    seed = check_number("manual_seed", "seed", seed, -2.0 ** 63, 2.0 ** 64, high_open=True,
                        integer=True)
    _tensor.manual_seed(seed if seed >= 0 else 0xffff_ffff_ffff_ffff + seed)


def tril(input: Tensor, diagonal: builtins.int = 0) -> Tensor:
    """The lower triangle of the last two dims (differentiable; see Tensor.tril)."""
    return check_tensor("tril", "input", input).tril(diagonal)


def triu(input: Tensor, diagonal: builtins.int = 0) -> Tensor:
    """The upper triangle of the last two dims (differentiable; see Tensor.triu)."""
    return check_tensor("triu", "input", input).triu(diagonal)


def topk(input: Tensor, k: builtins.int, dim: builtins.int = -1, largest: builtins.bool = True,
         sorted: builtins.bool = True):
    """The named tuple (values, indices) of the k largest (or smallest) along dim."""
    return check_tensor("topk", "input", input).topk(k, dim, largest, sorted)


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
                     "trace", "distributed", "weights")


def __getattr__(name: str):
    """Import a subpackage (``tg.nn``, ``tg.optim``, ``tg.train``, ...) on first access; any
    other unknown name is an AttributeError, as usual."""
    if name in _LAZY_SUBPACKAGES:
        import importlib
        return importlib.import_module(f".{name}", __name__)  # also caches it as an attribute
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY_SUBPACKAGES))
