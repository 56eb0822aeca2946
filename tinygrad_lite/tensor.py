"""The Tensor: a NumPy array plus what autograd needs to differentiate through it.

``Tensor`` is built in two files, to keep each short:

* ``tensor_base.py`` -- ``TensorBase``, what every tensor is before any op: the data and its
  conversion, ``requires_grad`` / ``.grad``, ``backward`` and hooks, in-place updates and their
  version counter, comparisons.
* here -- ``Tensor(TensorBase)`` with the operations: every method that computes something is a
  one-liner that calls a ``Function`` from ``tinygrad_lite/ops/`` -- open those files to see each
  op's forward and backward side by side. Also the constructors ``as_tensor`` / ``from_numpy``
  and the package-wide random generator (``manual_seed``, ``get_rng``).
"""

from __future__ import annotations

import numpy as np

from .checks import check_dtype, check_flag, check_scalar
from .tensor_base import (_FLOAT_DEFAULT, TensorBase, _check_device, _is_device_name,
                          _to_array)

_PY_NUMBERS = (int, float)   # exact types: bool is handled by the general path
_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator behind randn, rand, dropout and the layer initialisations."""
    global _rng
    _rng = np.random.default_rng(seed)


def get_rng() -> np.random.Generator:
    """The package-wide random generator (reseeded by ``manual_seed``)."""
    return _rng


def as_tensor(data, dtype=None) -> "Tensor":
    """A tensor that shares memory with ``data`` when it is already an array of the right dtype
    (as torch.as_tensor); otherwise a converted copy. Writes to a shared array are invisible to
    the version check that guards backward: do not change it while a graph uses the tensor."""
    return Tensor._make(_to_array(data, dtype, op="as_tensor"))


def from_numpy(array: np.ndarray) -> "Tensor":
    """A tensor sharing ``array``'s memory, as torch.from_numpy: a change to one shows in the
    other. Writes to the array bypass the version check that guards backward, so changing it
    between forward and backward gives a wrong gradient without an error; ``tg.tensor`` (or
    ``Tensor``) copies instead."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected an np.ndarray, got {type(array).__name__}")
    return Tensor._make(_to_array(array, op="from_numpy"))


class Tensor(TensorBase):
    """An n-dimensional array that can record the operations applied to it.

    ``data`` is the NumPy array. If ``requires_grad`` is True, operations on the tensor build
    a graph (each result remembers the op that made it in ``_ctx``) and ``backward()`` fills
    ``.grad`` of the leaves.

    Where to find what: the state (``data``, ``requires_grad``, ``.grad``, ``shape``, ``item``),
    ``backward``, hooks, the in-place updates (``+=``, ``add_``, ``fill_``, ``copy_``; all but
    ``__setitem__``) and the comparisons are in ``TensorBase`` (tensor_base.py). Here are the
    operations, in sections: dtype, arithmetic and math (ops/elementwise.py, ops/linalg.py),
    reductions (ops/reduce.py), softmax (ops/nn.py), shape and indexing (ops/movement.py).
    """

    __slots__ = ()

    # -- indexing assignment (in place; the other in-place updates are in TensorBase) ----------

    def __setitem__(self, index, value):
        self._check_inplace("__setitem__", value)
        index = movement.check_index(index, self.shape)
        value = self._value_array(value, "__setitem__")
        try:
            with np.errstate(all="ignore"):
                self.data[index] = value
        except (TypeError, ValueError) as e:
            raise ValueError(f"cannot assign a value of shape {np.shape(value)} to index {index!r}"
                             f" of a tensor with shape {self.shape}: {e}") from None
        self._bump_version()

    # -- dtype ---------------------------------------------------------------------------------

    def to(self, *args, dtype=None, device=None) -> "Tensor":
        """Cast to a dtype (``x.to(tg.long)``, ``x.to(dtype=...)``, ``x.to(other_tensor)``);
        the gradient is cast back. A device is accepted only if it is "cpu", as in
        ``x.to("cpu")`` or ``x.to("cpu", tg.float64)``."""
        for arg in args:
            if isinstance(arg, str) and _is_device_name(arg) and device is None:
                device = arg
            elif dtype is None:  # a dtype, or a tensor whose dtype to take
                dtype = arg.dtype if isinstance(arg, Tensor) else arg
            else:  # as torch: one dtype (positional, keyword or another tensor's), not two
                raise TypeError(f"to(): unexpected argument {arg!r} (give at most one dtype -- "
                                f"positionally, as dtype= or as another tensor -- and one device)")
        if device is not None:
            _check_device(device, "to")
        return self if dtype is None else self._cast(check_dtype("to", dtype))

    def astype(self, dtype) -> "Tensor":
        """Cast to ``dtype`` (NumPy's name); the gradient is cast back."""
        return self._cast(check_dtype("astype", dtype))

    def _cast(self, dtype: np.dtype) -> "Tensor":
        if dtype == self.data.dtype:
            return self
        return elementwise.Cast.apply(self, dtype=dtype)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def half(self):
        return self.to(np.float16)

    def int(self):
        return self.to(np.int32)

    def long(self):
        return self.to(np.int64)

    def bool(self):
        return self.to(np.bool_)

    def clone(self):
        """A copy with its own memory that stays in the graph (gradient flows through)."""
        return elementwise.Clone.apply(self)

    def contiguous(self):
        return self if self.data.flags.c_contiguous else self.clone()

    # -- arithmetic (ops/elementwise.py) -------------------------------------------------------

    def _binary(self, fn, other, reflected: bool = False) -> "Tensor":
        """Tensor-with-tensor arithmetic (the general path behind the operators).

        An integer or bool tensor meeting a Python float becomes float32 first: PyTorch's rule
        (NumPy would make int64 + float32 a float64)."""
        x = self.to(_FLOAT_DEFAULT) if isinstance(other, (float, np.floating)) and \
            self.data.dtype.kind in "iub" else self
        y = x._operand(other, fn.__name__.lower())  # Add -> "add", Maximum -> "maximum"
        return fn.apply(y, x) if reflected else fn.apply(x, y)

    # Each operator first tries the fast paths -- another Tensor, or a Python number with a float
    # tensor (the number is an option of the op, not a tensor) -- then the general path.

    def __add__(self, other):
        if type(other) is Tensor:
            return elementwise.Add.apply(self, other)
        if type(other) in _PY_NUMBERS and self.data.dtype.kind == "f":
            return elementwise.AddScalar.apply(self, c=other)
        return self._binary(elementwise.Add, other)

    def __radd__(self, other):
        if type(other) in _PY_NUMBERS and self.data.dtype.kind == "f":
            return elementwise.AddScalar.apply(self, c=other)
        return self._binary(elementwise.Add, other, reflected=True)

    def __sub__(self, other):
        if type(other) is Tensor:
            return elementwise.Sub.apply(self, other)
        if type(other) in _PY_NUMBERS and self.data.dtype.kind == "f":
            return elementwise.AddScalar.apply(self, c=-other)
        return self._binary(elementwise.Sub, other)

    def __rsub__(self, other):
        if type(other) in _PY_NUMBERS and self.data.dtype.kind == "f":
            return elementwise.RSubScalar.apply(self, c=other)
        return self._binary(elementwise.Sub, other, reflected=True)

    def __mul__(self, other):
        if type(other) is Tensor:
            return elementwise.Mul.apply(self, other)
        if type(other) in _PY_NUMBERS and self.data.dtype.kind == "f":
            return elementwise.MulScalar.apply(self, c=other)
        return self._binary(elementwise.Mul, other)

    def __rmul__(self, other):
        if type(other) in _PY_NUMBERS and self.data.dtype.kind == "f":
            return elementwise.MulScalar.apply(self, c=other)
        return self._binary(elementwise.Mul, other, reflected=True)

    def __truediv__(self, other):
        if type(other) is Tensor:
            return elementwise.Div.apply(self, other)
        if type(other) in _PY_NUMBERS and self.data.dtype.kind == "f":
            return elementwise.DivScalar.apply(self, c=other)
        return self._binary(elementwise.Div, other)

    def __rtruediv__(self, other):
        return self._binary(elementwise.Div, other, reflected=True)

    def __pow__(self, exponent):
        if type(exponent) in _PY_NUMBERS and self.data.dtype.kind == "f":
            return elementwise.PowScalar.apply(self, c=exponent)
        return self._binary(elementwise.Pow, exponent)

    def __rpow__(self, base):
        return self._binary(elementwise.Pow, base, reflected=True)

    def __neg__(self):
        return elementwise.Neg.apply(self)

    def __matmul__(self, other):
        return linalg.matmul(self, self._operand(other, "matmul"))

    def __rmatmul__(self, other):
        return linalg.matmul(self._operand(other, "matmul"), self)

    add, sub, mul, div, pow = __add__, __sub__, __mul__, __truediv__, __pow__
    matmul = __matmul__

    def maximum(self, other):
        return self._binary(elementwise.Maximum, other)

    def minimum(self, other):
        return self._binary(elementwise.Minimum, other)

    def _floating(self) -> "Tensor":
        """Math functions of integer/bool tensors compute in float32, as in PyTorch (NumPy would
        give float64)."""
        return self if self.data.dtype.kind == "f" else self.to(_FLOAT_DEFAULT)

    def exp(self):
        return elementwise.Exp.apply(self._floating())

    def log(self):
        return elementwise.Log.apply(self._floating())

    def sqrt(self):
        return elementwise.Sqrt.apply(self._floating())

    def sin(self):
        return elementwise.Sin.apply(self._floating())

    def cos(self):
        return elementwise.Cos.apply(self._floating())

    def tanh(self):
        return elementwise.Tanh.apply(self._floating())

    def sigmoid(self):
        return elementwise.Sigmoid.apply(self._floating())

    def relu(self):
        return elementwise.Relu.apply(self)

    def leaky_relu(self, negative_slope: float = 0.01):
        check_scalar("leaky_relu", "negative_slope", negative_slope)
        if self.data.dtype.kind != "f":  # as in PyTorch (the slope would not fit an integer)
            raise RuntimeError(f"leaky_relu: not implemented for dtype {self.data.dtype}; "
                               f"convert with .float() first")
        return elementwise.LeakyRelu.apply(self, slope=negative_slope)

    def gelu(self, approximate: str = "none"):
        x = self._floating()
        if approximate == "tanh":
            return elementwise.gelu_tanh(x)
        if approximate == "none":
            return elementwise.gelu(x)
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")

    def abs(self):
        return elementwise.Abs.apply(self)

    def clip(self, min=None, max=None):
        """Limit the values to [min, max]; each bound is a number, a Tensor or None."""
        if min is None and max is None:
            raise ValueError("clip: give at least one of min and max")
        if isinstance(min, Tensor) or isinstance(max, Tensor):  # elementwise bounds
            out = self if min is None else self.maximum(min)
            return out if max is None else out.minimum(max)
        bounds = [check_scalar("clip", name, b) for name, b in (("min", min), ("max", max))
                  if b is not None]
        x = self
        if self.data.dtype.kind != "f" and any(isinstance(b, (float, np.floating))
                                              for b in bounds):
            x = self.to(_FLOAT_DEFAULT)  # an integer tensor clipped at 0.5 becomes float32
        return elementwise.Clip.apply(x, low=min, high=max)

    clamp = clip

    def masked_fill(self, mask, value):
        """Replace the elements where ``mask`` (a bool tensor or array) is True by ``value`` (a
        number or a 0-d tensor, converted to this tensor's dtype); mask and tensor broadcast."""
        mask = mask if isinstance(mask, Tensor) else Tensor._make(np.asarray(mask))
        if mask.dtype != np.bool_:
            raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with dtype "
                               f"{mask.dtype} (compare to get one: x.masked_fill(mask != 0, v))")
        if isinstance(value, Tensor):
            if value.ndim != 0:
                raise RuntimeError(f"masked_fill only supports a 0-dimensional value tensor, but "
                                   f"got one with shape {value.shape}")
            if value.dtype.kind == "f" and self.dtype.kind in "iu":
                self._value_array(value, "masked_fill")  # (refuses NaN/inf)
            value = value.to(self.dtype)
        elif isinstance(value, (int, float, bool, np.number, np.bool_)):
            with np.errstate(all="ignore"):
                value = Tensor._make(self._value_array(value, "masked_fill").astype(self.dtype))
        else:
            raise TypeError(f"masked_fill: value must be a number or a 0-d tensor, got "
                            f"{type(value).__name__}")
        try:
            return elementwise.where(mask, value, self)
        except ValueError:
            raise ValueError(f"masked_fill: the mask of shape {mask.shape} cannot be broadcast "
                             f"to the tensor's shape {self.shape}") from None

    def sign(self):
        return elementwise.Sign.apply(self)

    def softplus(self, beta: float = 1.0, threshold: float = 20.0):
        """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold (as torch)."""
        x = self._floating()
        compute = np.result_type(x.dtype, np.float32)  # float16 is computed in float32
        for name, v in (("beta", beta), ("threshold", threshold)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or \
                    not np.isfinite(v) or (name == "beta" and _is_zero_in(compute, v)):
                raise ValueError(f"softplus: {name} must be a finite number"
                                 f"{' other than 0' if name == 'beta' else ''}, got {v!r} "
                                 f"(in the dtype it is computed in, {compute})")
        return elementwise.Softplus.apply(x, beta=beta, threshold=threshold)

    def relu6(self):
        return elementwise.Relu6.apply(self)

    def hardswish(self):
        return elementwise.Hardswish.apply(self._floating())

    def silu(self):
        return elementwise.Silu.apply(self._floating())

    def mish(self):
        return elementwise.Mish.apply(self._floating())

    # -- any / all (no gradient; the result is a bool tensor) ----------------------------------

    def any(self, dim=None, keepdim: bool = False):
        """True where any element (over ``dim``, or all) is non-zero; a bool tensor."""
        dim = reduce.normalize_axis(dim, self.ndim, "any")
        keepdim = check_flag("any", "keepdim", keepdim)
        return Tensor._make(np.asarray(self.data.any(axis=dim, keepdims=keepdim)))

    def all(self, dim=None, keepdim: bool = False):
        """True where every element (over ``dim``, or all) is non-zero; a bool tensor."""
        dim = reduce.normalize_axis(dim, self.ndim, "all")
        keepdim = check_flag("all", "keepdim", keepdim)
        return Tensor._make(np.asarray(self.data.all(axis=dim, keepdims=keepdim)))

    # -- reductions (ops/reduce.py) ------------------------------------------------------------
    # PyTorch's names (dim, keepdim) first; NumPy's (axis, keepdims) are accepted as aliases.

    def sum(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        dim, keepdim = dim_arg("sum", dim, axis), keepdim_arg("sum", keepdim, keepdims)
        return reduce.Sum.apply(self, axis=reduce.normalize_axis(dim, self.ndim, "sum"),
                                keepdims=keepdim)

    def mean(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        dim, keepdim = dim_arg("mean", dim, axis), keepdim_arg("mean", keepdim, keepdims)
        return reduce.mean(self, dim, keepdim)

    def var(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None, axis=None,
            keepdims=None):
        """Variance with Bessel's correction by default (as torch.var; NumPy's default is 0):
        sum((x - mean)^2) / (count - correction); ``unbiased=False`` is ``correction=0``."""
        return reduce.var(self, dim_arg("var", dim, axis), keepdim_arg("var", keepdim, keepdims),
                          reduce.correction_arg("var", unbiased, correction))

    def std(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None, axis=None,
            keepdims=None):
        """The square root of ``var`` (same arguments)."""
        dim = dim_arg("std", dim, axis)
        reduce.normalize_axis(dim, self.ndim, "std")  # so that a bad dim names std, not var
        return reduce.var(self, dim, keepdim_arg("std", keepdim, keepdims),
                          reduce.correction_arg("std", unbiased, correction)).sqrt()

    def max(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """With no dim: the largest element (a 0-d tensor). With an int ``dim``: the named tuple
        ``(values, indices)`` along it, as in PyTorch. With a tensor: ``maximum``."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        dim, keepdim = dim_arg("max", dim, axis), keepdim_arg("max", keepdim, keepdims)
        if dim is None:
            return reduce.Max.apply(self, axis=None, keepdims=keepdim)
        return reduce.max_min_along(self, dim, keepdim, largest=True)

    def min(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """As ``max``: the smallest element, or ``(values, indices)`` along ``dim``."""
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        dim, keepdim = dim_arg("min", dim, axis), keepdim_arg("min", keepdim, keepdims)
        if dim is None:
            if self.data.size == 0:  # checked here so that the error names min, not amin
                raise ValueError(f"min: cannot reduce an empty tensor of shape {self.shape}")
            return self.amin((), keepdim)
        return reduce.max_min_along(self, dim, keepdim, largest=False)

    def amax(self, dim=(), keepdim: bool = False):
        """The maximum over ``dim`` (an int, a tuple, or () for all); ties share the gradient."""
        if self.data.size == 0:  # checked here so that the error names amax, not max
            raise ValueError(f"amax: cannot reduce an empty tensor of shape {self.shape}")
        dim = None if dim == () else dim
        return reduce.Max.apply(self, axis=reduce.normalize_axis(dim, self.ndim, "amax"),
                                keepdims=check_flag("amax", "keepdim", keepdim))

    def amin(self, dim=(), keepdim: bool = False):
        """The minimum over ``dim`` (an int, a tuple, or () for all); ties share the gradient."""
        if self.data.size == 0:  # checked here so that the errors name amin, not max
            raise ValueError(f"amin: cannot reduce an empty tensor of shape {self.shape}")
        dim = None if dim == () else dim
        dim = reduce.normalize_axis(dim, self.ndim, "amin")
        keepdim = check_flag("amin", "keepdim", keepdim)
        if self.data.dtype.kind != "f":  # no gradient; and -x fails on bools, overflows on ints
            return Tensor._make(self.data.min(axis=dim, keepdims=keepdim))
        return -reduce.Max.apply(-self, axis=dim, keepdims=keepdim)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
        """The named tuple ``(values, indices)`` of the k largest (or smallest) along ``dim``."""
        return reduce.topk(self, k, dim, largest, sorted)

    def logsumexp(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        dim = reduce.normalize_axis(dim_arg("logsumexp", dim, axis), self.ndim, "logsumexp")
        return reduce.LogSumExp.apply(self, axis=dim,
                                      keepdims=keepdim_arg("logsumexp", keepdim, keepdims))

    def argmax(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return reduce.arg_reduce(self, np.argmax, dim_arg("argmax", dim, axis),
                                 keepdim_arg("argmax", keepdim, keepdims), "argmax")

    def argmin(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return reduce.arg_reduce(self, np.argmin, dim_arg("argmin", dim, axis),
                                 keepdim_arg("argmin", keepdim, keepdims), "argmin")

    # -- softmax (ops/nn.py) -------------------------------------------------------------------

    def softmax(self, dim: int = -1, *, axis=None):
        return nn_ops.softmax(self, dim_arg("softmax", dim, axis, default=-1))

    def log_softmax(self, dim: int = -1, *, axis=None):
        return nn_ops.log_softmax(self, dim_arg("log_softmax", dim, axis, default=-1))

    # -- shape and indexing (ops/movement.py) --------------------------------------------------

    def reshape(self, *shape, **kwargs):
        """``reshape(2, 3)``, ``reshape((2, 3))`` or ``reshape(shape=(2, 3))``; -1 is inferred."""
        return movement.reshape(self, _shape_kwarg("reshape", shape, kwargs))

    def view(self, *shape, **kwargs):
        """As ``reshape`` (NumPy's reshape returns a view whenever PyTorch's view could)."""
        return movement.reshape(self, _shape_kwarg("view", shape, kwargs))

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return movement.flatten(self, start_dim, end_dim)

    def squeeze(self, dim=None, *, axis=None):
        return movement.squeeze(self, dim_arg("squeeze", dim, axis))

    def unsqueeze(self, dim=None, *, axis=None):
        dim = dim_arg("unsqueeze", dim, axis)
        if dim is None:
            raise TypeError("unsqueeze() missing its argument dim (where to insert the new "
                            "size-1 dimension)")
        return movement.unsqueeze(self, dim)

    def permute(self, *dims):
        return movement.permute(self, dims)

    def transpose(self, dim0=None, dim1=None):
        """Swap two axes (PyTorch); with no arguments reverse all axes (NumPy)."""
        return movement.transpose(self, dim0, dim1)

    @property
    def T(self):
        return movement.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    def expand(self, *shape):
        return movement.expand(self, shape)

    def broadcast_to(self, shape):
        return movement.expand(self, tuple(shape) if isinstance(shape, (tuple, list)) else
                               (shape,))

    def tril(self, diagonal: int = 0):
        """The lower triangle of the last two dims (elements above ``diagonal`` become 0)."""
        return movement.triangle(self, diagonal, upper=False)

    def triu(self, diagonal: int = 0):
        """The upper triangle of the last two dims (elements below ``diagonal`` become 0)."""
        return movement.triangle(self, diagonal, upper=True)

    def __getitem__(self, index):
        return movement.getitem(self, index)

    def split(self, split_size_or_sections, dim: int = 0, *, axis=None):
        return movement.split(self, split_size_or_sections, dim_arg("split", dim, axis, default=0))

    def chunk(self, chunks: int, dim: int = 0, *, axis=None):
        return movement.chunk(self, chunks, dim_arg("chunk", dim, axis, default=0))


def _is_zero_in(dtype: np.dtype, number) -> bool:
    """Whether ``number`` is 0 once converted to ``dtype`` (1e-50 is, in float32)."""
    with np.errstate(all="ignore"):
        return dtype.type(number) == 0


def _shape_kwarg(op: str, shape: tuple, kwargs: dict):
    """The shape of reshape/view, given positionally or as ``shape=`` (PyTorch's keyword)."""
    if kwargs:
        if set(kwargs) != {"shape"} or shape:
            raise TypeError(f"{op}() takes the new shape positionally or as shape=..., got "
                            f"{shape!r} and keywords {sorted(kwargs)}")
        shape = (kwargs["shape"],)
    return shape


# The op modules import Tensor, so they are imported after it is defined.
from .ops import elementwise, linalg, movement, reduce  # noqa: E402
from .ops import nn as nn_ops  # noqa: E402
from .ops.args import dim_arg, keepdim_arg  # noqa: E402
