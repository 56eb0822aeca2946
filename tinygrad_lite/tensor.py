"""The Tensor: a NumPy array plus what autograd needs to differentiate through it.

Every method that computes something is a one-liner that calls a ``Function`` from
``tinygrad_lite/ops/`` -- open those files to see each op's forward and backward side by side.
"""

from __future__ import annotations

import numpy as np

from . import autograd
from .checks import check_dtype, check_flag, check_scalar

_FLOAT_DEFAULT = np.float32  # Python floats (and lists of them) become float32, as in PyTorch
_PY_NUMBERS = (int, float)   # exact types: bool is handled by the general path
_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator behind randn, rand, dropout and the layer initialisations."""
    global _rng
    _rng = np.random.default_rng(seed)


def get_rng() -> np.random.Generator:
    """The package-wide random generator (reseeded by ``manual_seed``)."""
    return _rng


def _to_array(data, dtype=None, copy: bool = False, op: str = "tensor") -> np.ndarray:
    """Convert ``data`` to an ndarray following PyTorch's rules for Python values. With ``copy``
    the result never shares memory with ``data``. Errors name ``op``, the caller."""
    if isinstance(data, Tensor):
        array = data.data
    elif isinstance(data, np.ndarray):
        array = data
    elif isinstance(data, np.generic):
        array = np.asarray(data)
    else:
        try:
            array = np.asarray(data)
        except ValueError as e:  # ragged nested lists
            raise ValueError(f"{op}: cannot make a tensor from {type(data).__name__}: {e}") \
                from None
        if array.dtype == np.float64:
            array = array.astype(_FLOAT_DEFAULT)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{op}: tensors hold float, integer or bool data; got dtype "
                        f"{array.dtype} from {type(data).__name__}")
    if dtype is not None:
        dtype = check_dtype(op, dtype)  # before the cast: NumPy would make complex, object
        with np.errstate(all="ignore"):  # NaN -> int is silent, as in PyTorch
            array = array.astype(dtype, copy=False)
    if copy and (array is data or array.base is not None or
                 isinstance(data, Tensor) and array is data.data):
        array = array.copy()  # still the caller's memory: no conversion made a new array
    return array


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


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    ``data`` is the NumPy array. If ``requires_grad`` is True, operations on the tensor build
    a graph (each result remembers the op that made it in ``_ctx``) and ``backward()`` fills
    ``.grad`` of the leaves.
    """

    __slots__ = ("data", "grad", "_requires_grad", "_ctx", "_version", "_hooks",
                 "_retains_grad", "__weakref__")
    __array_priority__ = 1000  # make `ndarray + Tensor` call Tensor.__radd__

    def __init__(self, data, dtype=None, requires_grad: bool = False):
        # A copy, as torch.tensor makes: a tensor that shared the caller's array would change
        # when the array does, behind the version check (torch.from_numpy is how to share).
        self.data = _to_array(data, dtype, copy=True)
        self.grad = None
        self._ctx = None
        self._version = [0]   # shared with views; bumped by every in-place change
        self._hooks = None
        self._retains_grad = False
        self._requires_grad = False
        if check_flag("tensor", "requires_grad", requires_grad):
            self._set_requires_grad(True, "tensor")

    @classmethod
    def _make(cls, array: np.ndarray) -> "Tensor":
        """Fast internal constructor: wrap an array that is already an ndarray of a valid dtype.
        A NumPy scalar (what ufuncs and indexing return for a 0-d result) becomes a 0-d array,
        so that every tensor's data is writable in place like any other ndarray."""
        if type(array) is not np.ndarray:
            array = np.asarray(array)
        t = object.__new__(cls)
        t.data = array
        t.grad = None
        t._requires_grad = False
        t._ctx = None
        t._version = [0]
        t._hooks = None
        t._retains_grad = False
        return t

    # -- basic attributes ----------------------------------------------------------------------

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self._set_requires_grad(check_flag("requires_grad", "requires_grad", value),
                                "requires_grad")

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        return self._set_requires_grad(
            check_flag("requires_grad_", "requires_grad", requires_grad), "requires_grad_")

    def _set_requires_grad(self, value: bool, op: str) -> "Tensor":
        if value and self.data.dtype.kind != "f":  # RuntimeError, as in PyTorch
            raise RuntimeError(f"{op}: only Tensors of floating point dtype can require "
                               f"gradients; this tensor has dtype {self.data.dtype} (convert "
                               f"with .float() first)")
        if not value and self._ctx is not None:
            raise RuntimeError(f"{op}: requires_grad can only be turned off on a leaf tensor; "
                               f"use .detach() to get a tensor outside the graph")
        self._requires_grad = value
        return self

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        """The number of dimensions (PyTorch's name for ``ndim``)."""
        return self.data.ndim

    def size(self, dim: int | None = None):
        """The shape (as in PyTorch), or the length of dimension ``dim`` (negative counts from
        the end)."""
        if dim is None:
            return self.data.shape
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"size(): dim must be an int, got {dim!r}")
        ndim = self.data.ndim
        if ndim == 0:
            raise IndexError(f"size(): dimension specified as {dim} but the tensor has no "
                             f"dimensions")
        if not -ndim <= dim < ndim:
            raise IndexError(f"size(): Dimension out of range (expected to be in range of "
                             f"[{-ndim}, {ndim - 1}], but got {dim})")
        return self.data.shape[dim]

    @property
    def device(self) -> str:
        """Always "cpu": tinygrad_lite computes with NumPy and its C kernels on the CPU."""
        return "cpu"

    def numel(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (parameters, inputs, constants)."""
        return self._ctx is None

    @property
    def grad_fn(self):
        """The graph node that produced this tensor (None for leaves)."""
        return self._ctx

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self) -> "Tensor":
        """The same data (shared, like a view) outside the graph."""
        t = Tensor._make(self.data)
        t._version = self._version
        return t

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.data.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype={self.data.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{type(self._ctx).__name__}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with shape {self.shape} is ambiguous; "
                               f"use .any() or .all()")
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        value = self.item()
        if isinstance(value, float) and not np.isfinite(value):  # Python's OverflowError
            raise RuntimeError(f"int(): item() is {value}, which cannot be converted to an "
                               f"integer")
        return int(value)

    __hash__ = object.__hash__  # == builds a tensor, so hashing is by identity

    # -- autograd ------------------------------------------------------------------------------

    def backward(self, gradient=None, retain_graph: bool = False, create_graph: bool = False):
        """Fill ``.grad`` of every leaf this tensor depends on with d(self)/d(leaf).

        ``gradient`` is d(loss)/d(self); it may be omitted only for a one-element tensor.
        The graph's saved values are freed afterwards unless ``retain_graph`` is True.
        With ``create_graph=True`` the backward pass is recorded too (for higher derivatives).
        """
        retain_graph = check_flag("backward", "retain_graph", retain_graph)
        create_graph = check_flag("backward", "create_graph", create_graph)
        seed = autograd._seed_gradient(self, gradient, "backward")
        autograd.run_backward([self], [seed], retain_graph or create_graph, create_graph)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor during backward (leaves always keep it)."""
        if not self._requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor
        replaces the gradient (it must keep the gradient's shape and dtype, else backward
        raises a RuntimeError naming the hook). Returns a handle whose ``remove()`` unregisters
        it."""
        if not callable(hook):
            raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
        if not self._requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does "
                               "not require grad")
        if self._hooks is None:
            self._hooks = {}
        key = object()
        self._hooks[key] = hook
        return _HookHandle(self._hooks, key)

    # -- in-place operations -------------------------------------------------------------------

    def _bump_version(self) -> None:
        """Record that ``data`` was changed in place (by an op here, or an optimizer step): a
        pending backward that saved the old values then raises instead of using the new ones
        (Function._check_versions). Views share the counter, so a change through one counts
        for all."""
        self._version[0] += 1

    def _check_inplace(self, name: str, other=None) -> None:
        """In-place changes are never recorded in the graph, so refuse them where they would be."""
        if not autograd.is_grad_enabled():
            return
        if self._requires_grad or (isinstance(other, Tensor) and other._requires_grad):
            what = ("a leaf tensor that requires grad" if self.is_leaf and self._requires_grad
                    else "a tensor that is part of a graph")
            raise RuntimeError(
                f"{name}: in-place operation on {what} (shape {self.shape}) while recording. "
                f"tinygrad_lite does not record in-place ops: write `x = x + y` instead, or "
                f"wrap parameter updates in `with no_grad():`.")

    def _inplace(self, name: str, ufunc, other) -> "Tensor":
        self._check_inplace(name, other)
        value = self._operand(other, name).data
        quiet = autograd.quiet_begin()  # inf - inf is NaN without a NumPy warning, as in torch
        try:
            ufunc(self.data, value, out=self.data, casting="same_kind")
        except (TypeError, ValueError) as e:  # numpy's casting or broadcasting refusal
            shape = getattr(value, "shape", ())
            # not type(e)(...): numpy's own subclasses (casting errors) need more arguments
            error = TypeError if isinstance(e, TypeError) else ValueError
            raise error(f"{name}: cannot update a tensor of shape {self.shape} and dtype "
                        f"{self.dtype} in place with a value of shape {shape} and dtype "
                        f"{np.result_type(value)}") from None
        finally:
            autograd.quiet_end(quiet)
        self._bump_version()
        return self

    def __iadd__(self, other):
        return self._inplace("+=", np.add, other)

    def __isub__(self, other):
        return self._inplace("-=", np.subtract, other)

    def __imul__(self, other):
        return self._inplace("*=", np.multiply, other)

    def __itruediv__(self, other):
        return self._inplace("/=", np.true_divide, other)

    def add_(self, other, alpha=1.0):
        return self._inplace("add_", np.add, self._scaled(other, alpha, "add_"))

    def sub_(self, other, alpha=1.0):
        return self._inplace("sub_", np.subtract, self._scaled(other, alpha, "sub_"))

    def _scaled(self, other, alpha, op: str):
        """``alpha * other`` for add_/sub_ (the value itself when alpha is 1)."""
        check_scalar(op, "alpha", alpha)
        if alpha == 1:
            return other
        with np.errstate(all="ignore"):
            return self._operand(other, op).data * alpha

    def mul_(self, other):
        return self._inplace("mul_", np.multiply, other)

    def div_(self, other):
        return self._inplace("div_", np.true_divide, other)

    def fill_(self, value):
        self._check_inplace("fill_")
        value = self._value_array(value, "fill_")
        if value.ndim != 0:
            raise RuntimeError(f"fill_ only supports a number or a 0-dimensional value tensor, "
                               f"got shape {value.shape}")
        with np.errstate(all="ignore"):  # 1e10 into float16 is inf, silently
            self.data[...] = value
        self._bump_version()
        return self

    def _value_array(self, value, op: str) -> np.ndarray:
        """The value written by fill_ / __setitem__, as an array of numbers; refused if it is not
        numbers, or if it is NaN/inf going into an integer tensor (PyTorch's overflow error)."""
        try:
            array = value.data if isinstance(value, Tensor) else np.asarray(value)
        except ValueError as e:  # ragged nested lists
            raise ValueError(f"{op}: cannot make an array from the value: {e}") from None
        if array.dtype.kind not in "fiub":
            raise TypeError(f"{op}: the value must be a number, an array of numbers or a Tensor, "
                            f"got {type(value).__name__} {value!r:.40}")
        if self.data.dtype.kind in "iu" and array.dtype.kind == "f" and \
                not np.isfinite(array).all():
            raise RuntimeError(f"{op}: value cannot be converted to dtype {self.data.dtype} "
                               f"without overflow (NaN or inf into an integer tensor)")
        return array

    def zero_(self):
        return self.fill_(0)

    def copy_(self, src):
        self._check_inplace("copy_", src)
        src_data = src.data if isinstance(src, Tensor) else np.asarray(src)
        try:
            np.copyto(self.data, src_data, casting="same_kind")
        except (TypeError, ValueError):
            raise ValueError(f"copy_: cannot copy shape {src_data.shape} ({src_data.dtype}) into "
                             f"shape {self.shape} ({self.dtype})") from None
        self._bump_version()
        return self

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

    def cpu(self) -> "Tensor":
        return self

    def cuda(self, *args, **kwargs):
        _check_device("cuda", "cuda")

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

    def _operand(self, other, op: str = "operand") -> "Tensor":
        """Turn a Python number / array into a Tensor. Python scalars take this tensor's dtype
        (so `x * 2.0` stays float32), as in PyTorch; so do NumPy scalars (`x / np.sqrt(d)`).
        Anything else (a str, None, a complex number) is a TypeError naming ``op``."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (np.bool_, np.integer, np.floating)):
            other = other.item()  # a NumPy scalar is a number here, not a float64 array
        if isinstance(other, (int, float, bool)):
            kind = self.data.dtype.kind
            if kind == "f" or (kind in "iu" and not isinstance(other, float)) or (
                    kind == "b" and isinstance(other, bool)):
                dtype = self.data.dtype
            else:
                dtype = _FLOAT_DEFAULT if isinstance(other, float) else np.int64
            quiet = autograd.quiet_begin()  # 1e10 in float16 is inf, silently
            try:
                return Tensor._make(np.array(other, dtype=dtype))
            except OverflowError:  # an integer too large for the tensor's integer dtype
                raise RuntimeError(f"{op}: the number {other} does not fit dtype {dtype} "
                                   f"(overflow)") from None
            finally:
                autograd.quiet_end(quiet)
        try:
            return Tensor._make(_to_array(other))
        except (TypeError, ValueError) as e:
            raise type(e)(f"{op}: the other operand must be a Tensor, a number or an array of "
                          f"numbers ({e})") from None

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
        for name, v in (("beta", beta), ("threshold", threshold)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or \
                    not np.isfinite(v) or (name == "beta" and v == 0):
                raise ValueError(f"softplus: {name} must be a finite number"
                                 f"{' other than 0' if name == 'beta' else ''}, got {v!r}")
        return elementwise.Softplus.apply(self._floating(), beta=beta, threshold=threshold)

    def relu6(self):
        return elementwise.Relu6.apply(self)

    def hardswish(self):
        return elementwise.Hardswish.apply(self._floating())

    def silu(self):
        return elementwise.Silu.apply(self._floating())

    def mish(self):
        return elementwise.Mish.apply(self._floating())

    # -- comparisons (no gradient; the result is a bool tensor) --------------------------------

    def _compare(self, other, ufunc, symbol):
        other = self._operand(other, symbol)
        try:
            return Tensor._make(ufunc(self.data, other.data))
        except ValueError:
            raise ValueError(f"{symbol}: shapes {self.shape} and {other.shape} cannot be "
                             f"broadcast together") from None

    def __eq__(self, other):
        return self._compare(other, np.equal, "==")

    def __ne__(self, other):
        return self._compare(other, np.not_equal, "!=")

    def __lt__(self, other):
        return self._compare(other, np.less, "<")

    def __le__(self, other):
        return self._compare(other, np.less_equal, "<=")

    def __gt__(self, other):
        return self._compare(other, np.greater, ">")

    def __ge__(self, other):
        return self._compare(other, np.greater_equal, ">=")

    def __invert__(self):
        if self.dtype != np.bool_:
            raise TypeError(f"~ needs a bool tensor, got dtype {self.dtype}")
        return Tensor._make(~self.data)

    def __and__(self, other):
        return self._compare(other, np.logical_and, "&")

    def __or__(self, other):
        return self._compare(other, np.logical_or, "|")

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

    # -- softmax (ops/nn.py) --------------------------------------------------------------------

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


def _shape_kwarg(op: str, shape: tuple, kwargs: dict):
    """The shape of reshape/view, given positionally or as ``shape=`` (PyTorch's keyword)."""
    if kwargs:
        if set(kwargs) != {"shape"} or shape:
            raise TypeError(f"{op}() takes the new shape positionally or as shape=..., got "
                            f"{shape!r} and keywords {sorted(kwargs)}")
        shape = (kwargs["shape"],)
    return shape


_DEVICE_PREFIXES = ("cpu", "cuda", "mps", "xpu", "xla", "meta", "hip", "vulkan", "ipu")


def _is_device_name(name: str) -> bool:
    return name.split(":")[0] in _DEVICE_PREFIXES


def _check_device(device, op: str) -> None:
    if str(device).split(":")[0] != "cpu":
        raise RuntimeError(f"{op}(): device {str(device)!r} is not available: tinygrad_lite "
                           f"runs on the CPU only (use device 'cpu')")


class _HookHandle:
    def __init__(self, hooks: dict, key):
        self._hooks, self._key = hooks, key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)


# The op modules import Tensor, so they are imported after it is defined.
from .ops import elementwise, linalg, movement, reduce  # noqa: E402
from .ops import nn as nn_ops  # noqa: E402
from .ops.args import dim_arg, keepdim_arg  # noqa: E402
