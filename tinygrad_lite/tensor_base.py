"""What every Tensor is before any operation: a NumPy array plus the bookkeeping autograd needs.

``TensorBase`` holds the data and its conversion (``_to_array``, ``_operand``), ``requires_grad``
/ ``.grad`` / the graph node that made it (``_ctx``), ``backward`` and hooks, the in-place updates
with their version counter (``_bump_version``), and the comparisons (which record no graph
node). ``tensor.py`` builds ``Tensor`` on it with every differentiable operation, each calling a
``Function`` from ``ops/``. One class in two files only to keep each file short: this one
imports no op, and every tensor is a ``Tensor`` (so ``isinstance(x, TensorBase)`` here means "x
is a tensor", and ``self._make`` makes a ``Tensor``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import autograd
from .checks import check_dtype, check_flag, check_scalar

if TYPE_CHECKING:  # for the annotations only: tensor.py imports this module
    from .tensor import Tensor

_FLOAT_DEFAULT = np.float32  # Python floats (and lists of them) become float32, as in PyTorch


def _to_array(data, dtype=None, copy: bool = False, op: str = "tensor") -> np.ndarray:
    """Convert ``data`` to an ndarray following PyTorch's rules for Python values. With ``copy``
    the result never shares memory with ``data``. Errors name ``op``, the caller."""
    if isinstance(data, TensorBase):
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
                 isinstance(data, TensorBase) and array is data.data):
        array = array.copy()  # still the caller's memory: no conversion made a new array
    return array

class TensorBase:
    """The state of a tensor and the methods that build no graph node; ``Tensor`` (tensor.py)
    subclasses it with the operations.

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

    def cpu(self) -> "Tensor":
        """This tensor: it is on the CPU already (see ``device``)."""
        return self

    def cuda(self, *args, **kwargs):
        _check_device("cuda", "cuda")

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
        t = self._make(self.data)
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
        if self._requires_grad or (isinstance(other, TensorBase) and other._requires_grad):
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
            array = value.data if isinstance(value, TensorBase) else np.asarray(value)
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
        src_data = src.data if isinstance(src, TensorBase) else np.asarray(src)
        try:
            np.copyto(self.data, src_data, casting="same_kind")
        except (TypeError, ValueError):
            raise ValueError(f"copy_: cannot copy shape {src_data.shape} ({src_data.dtype}) into "
                             f"shape {self.shape} ({self.dtype})") from None
        self._bump_version()
        return self

    # -- conversion of the other operand -------------------------------------------------------

    def _operand(self, other, op: str = "operand") -> "Tensor":
        """Turn a Python number / array into a Tensor. Python scalars take this tensor's dtype
        (so `x * 2.0` stays float32), as in PyTorch; so do NumPy scalars (`x / np.sqrt(d)`).
        Anything else (a str, None, a complex number) is a TypeError naming ``op``."""
        if isinstance(other, TensorBase):
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
                return self._make(np.array(other, dtype=dtype))
            except OverflowError:  # an integer too large for the tensor's integer dtype
                raise RuntimeError(f"{op}: the number {other} does not fit dtype {dtype} "
                                   f"(overflow)") from None
            finally:
                autograd.quiet_end(quiet)
        try:
            return self._make(_to_array(other))
        except (TypeError, ValueError) as e:
            raise type(e)(f"{op}: the other operand must be a Tensor, a number or an array of "
                          f"numbers ({e})") from None

    # -- comparisons (no gradient; the result is a bool tensor) --------------------------------

    def _compare(self, other, ufunc, symbol):
        other = self._operand(other, symbol)
        try:
            return self._make(ufunc(self.data, other.data))
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
        return self._make(~self.data)

    def __and__(self, other):
        return self._compare(other, np.logical_and, "&")

    def __or__(self, other):
        return self._compare(other, np.logical_or, "|")


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
