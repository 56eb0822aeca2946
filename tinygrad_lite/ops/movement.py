"""Shape and indexing operations: they move or select elements, never change their values.

So their backward moves the gradient back: reshape undoes reshape, the inverse permutation
undoes permute, and indexing scatters (adds) the gradient into the positions it read.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function, unbroadcast
from ..checks import check_dim
from ..tensor import Tensor
from .args import dim_arg


# --------------------------------------------------------------------------------------------
# Reshaping
# --------------------------------------------------------------------------------------------

class Reshape(Function):
    """out = x viewed with a new shape;  dx = g reshaped back to x's shape"""
    uses_inputs = False
    is_view = True

    def forward(self, x):
        self.in_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"reshape: cannot view a tensor of shape {x.shape} ({x.size} "
                             f"elements) as shape {self.shape}") from None

    def backward(self, g, out):
        return g.reshape(self.in_shape)


def _shape_arg(shape, op: str) -> tuple:
    """Accept reshape(2, 3) and reshape((2, 3)); -1 (one size to infer) is the only negative."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"{op}: shape entries must be ints, got {n!r} in {shape}")
        if n < -1:  # NumPy would read any negative size as -1
            raise RuntimeError(f"{op}: invalid shape dimension {n} in {shape}")
    return tuple(int(n) for n in shape)


def reshape(x: Tensor, shape) -> Tensor:
    shape = _shape_arg(shape, "reshape")
    if shape.count(-1) > 1:
        raise RuntimeError(f"reshape: only one dimension can be inferred (-1), got {shape}")
    if shape == x.shape:
        return x
    return Reshape.apply(x, shape=shape)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    start = check_dim("flatten", start_dim, x.ndim, "start_dim")
    end = check_dim("flatten", end_dim, x.ndim, "end_dim")
    if x.ndim == 0:
        return reshape(x, (1,))
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    middle = int(np.prod(x.shape[start:end + 1]))
    return reshape(x, (x.shape[:start] + (middle,) + x.shape[end + 1:],))


def squeeze(x: Tensor, dim=None) -> Tensor:
    """Remove size-1 dimensions: all of them, or those among ``dim`` (an int or a tuple). A named
    dimension whose size is not 1 is left as it is, as in PyTorch."""
    if dim is None:
        return reshape(x, (tuple(n for n in x.shape if n != 1),))
    if not isinstance(dim, (tuple, list)):
        dim = (dim,)
    dims = {check_dim("squeeze", d, x.ndim) for d in dim}
    return reshape(x, (tuple(n for i, n in enumerate(x.shape) if not (i in dims and n == 1)),))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dimension at ``dim`` (-1 means at the end)."""
    dim = check_dim("unsqueeze", dim, x.ndim + 1)  # one more place than there are dims
    return reshape(x, (x.shape[:dim] + (1,) + x.shape[dim:],))


class Permute(Function):
    """out = x with its axes reordered by dims;  dx = g with the inverse order"""
    uses_inputs = False
    is_view = True

    def forward(self, x):
        return np.transpose(x, self.dims)

    def backward(self, g, out):
        return g.permute(*np.argsort(self.dims).tolist())


def permute(x: Tensor, dims) -> Tensor:
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if len(dims) != x.ndim:
        raise ValueError(f"permute: got {len(dims)} dims {dims} for a tensor with shape "
                         f"{x.shape}; give each of its {x.ndim} dimensions once")
    dims = tuple(check_dim("permute", d, x.ndim, "dims") for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dimensions of a "
                         f"tensor with shape {x.shape}")
    if dims == tuple(range(x.ndim)):
        return x
    return Permute.apply(x, dims=dims)


def transpose(x: Tensor, dim0=None, dim1=None) -> Tensor:
    if dim0 is None and dim1 is None:
        return permute(x, tuple(range(x.ndim - 1, -1, -1)))
    if dim0 is None or dim1 is None:
        raise TypeError("transpose takes two dimensions (or none to reverse all)")
    a = check_dim("transpose", dim0, x.ndim, "dim0")
    b = check_dim("transpose", dim1, x.ndim, "dim1")
    if x.ndim == 0:  # dims 0 and -1 of a 0-d tensor: nothing to swap
        return x
    dims = list(range(x.ndim))
    dims[a], dims[b] = dims[b], dims[a]
    return permute(x, tuple(dims))


class Expand(Function):
    """out = x broadcast to a larger shape (no copy);  dx = g summed back to x's shape"""
    uses_inputs = False
    is_view = True

    def forward(self, x):
        self.in_shape = x.shape
        try:
            return np.broadcast_to(x, self.shape)
        except ValueError:
            raise ValueError(f"expand: cannot broadcast a tensor of shape {x.shape} to shape "
                             f"{self.shape}") from None

    def backward(self, g, out):
        return unbroadcast(g, self.in_shape)


def expand(x: Tensor, shape) -> Tensor:
    shape = _shape_arg(shape, "expand")
    offset = len(shape) - x.ndim
    if offset < 0:
        raise ValueError(f"expand: target shape {shape} has fewer dimensions than the tensor's "
                         f"shape {x.shape}")
    shape = tuple(x.shape[i - offset] if n == -1 and i >= offset else n
                  for i, n in enumerate(shape))
    if shape == x.shape:
        return x
    return Expand.apply(x, shape=shape)


# --------------------------------------------------------------------------------------------
# Indexing
# --------------------------------------------------------------------------------------------

def check_index(index, shape):
    """Validate an index and convert Tensors inside it to arrays (basic and advanced indexing)."""
    items = index if isinstance(index, tuple) else (index,)
    converted = []
    for item in items:
        if isinstance(item, Tensor):
            item = item.data
        if isinstance(item, list):
            item = np.asarray(item)
            if item.size == 0:
                item = item.astype(np.int64)
        if isinstance(item, np.ndarray):
            if item.dtype.kind not in "iub":
                raise TypeError(f"tensors can be indexed by integer or bool arrays, got an array "
                                f"of dtype {item.dtype}")
        elif isinstance(item, bool) or not (
                item is None or item is Ellipsis or isinstance(item, (int, np.integer, slice))):
            raise TypeError(
                f"unsupported index {item!r} of type {type(item).__name__}: use ints, slices, "
                f"None, ..., or integer/bool arrays or tensors")
        converted.append(item)
    return tuple(converted) if isinstance(index, tuple) else converted[0]


def _is_basic(index) -> bool:
    """True when NumPy's basic indexing applies (the result is a view, no element repeats)."""
    items = index if isinstance(index, tuple) else (index,)
    return not any(isinstance(i, np.ndarray) for i in items)


class GetItem(Function):
    """out = x[index];  dx = zeros like x, with g added at the positions read (IndexAdd)"""
    uses_inputs = False

    def forward(self, x):
        self.in_shape = x.shape
        self.is_view = _is_basic(self.index)  # NumPy gives a view: in-place changes are shared
        try:
            return x[self.index]
        except IndexError as e:
            raise IndexError(f"index {self.index!r} is out of range for a tensor of shape "
                             f"{x.shape}: {e}") from None

    def backward(self, g, out):
        return IndexAdd.apply(g, index=self.index, shape=self.in_shape)


class IndexAdd(Function):
    """out = zeros(shape) with g added at index (repeated indices add up);  dg = out_grad[index]"""
    uses_inputs = False

    def forward(self, g):
        out = np.zeros(self.shape, dtype=g.dtype)
        if _is_basic(self.index):
            out[self.index] = g  # basic indexing never repeats an element: assignment is enough
        else:
            np.add.at(out, self.index, g)  # an index array may repeat (embedding lookups do)
        return out

    def backward(self, g, out):
        return GetItem.apply(g, index=self.index)


def getitem(x: Tensor, index) -> Tensor:
    index = check_index(index, x.shape)
    return GetItem.apply(x, index=index)


class Gather(Function):
    """out = x picked at index along dim;  dx = zeros like x with g added at index (ScatterAdd)"""
    uses_inputs = False

    def forward(self, x):
        self.in_shape = x.shape
        return np.take_along_axis(x, self.index, axis=self.dim)

    def backward(self, g, out):
        return ScatterAdd.apply(g, index=self.index, dim=self.dim, shape=self.in_shape)


class ScatterAdd(Function):
    """out = zeros(shape) with g added along dim at index;  dg = out_grad picked at index (Gather)"""
    uses_inputs = False

    def forward(self, g):
        out = np.zeros(self.shape, dtype=g.dtype)
        position = list(np.indices(self.index.shape, sparse=True))
        position[self.dim] = self.index
        np.add.at(out, tuple(position), g)  # an index may repeat: add, do not assign
        return out

    def backward(self, g, out):
        return Gather.apply(g, index=self.index, dim=self.dim)


def gather(x: Tensor, dim: int, index: np.ndarray) -> Tensor:
    """The elements of ``x`` at integer positions ``index`` along ``dim`` (index has x's number of
    dimensions); what max(dim), min(dim) and topk use to pick their values."""
    return Gather.apply(x, index=np.asarray(index, dtype=np.int64), dim=dim)


class Triangle(Function):
    """out = tril(x) or triu(x) over the last two dims;  dx = g with the same elements zeroed"""
    uses_inputs = False

    def forward(self, x):
        return (np.triu if self.upper else np.tril)(x, self.diagonal)

    def backward(self, g, out):
        return Triangle.apply(g, upper=self.upper, diagonal=self.diagonal)


def triangle(x: Tensor, diagonal: int, upper: bool) -> Tensor:
    op = "triu" if upper else "tril"
    if x.ndim < 2:
        raise RuntimeError(f"{op}: input tensor must have at least 2 dimensions, got shape "
                           f"{x.shape}")
    if isinstance(diagonal, bool) or not isinstance(diagonal, (int, np.integer)):
        raise TypeError(f"{op}: diagonal must be an int, got {diagonal!r}")
    return Triangle.apply(x, upper=upper, diagonal=int(diagonal))


# --------------------------------------------------------------------------------------------
# Joining and splitting
# --------------------------------------------------------------------------------------------

class Cat(Function):
    """out = the inputs joined along axis;  each dx = the slice of g it occupies"""
    uses_inputs = False

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return np.concatenate(xs, axis=self.axis)

    def backward(self, g, out):
        grads, start = [], 0
        for size in self.sizes:
            index = (slice(None),) * self.axis + (slice(start, start + size),)
            grads.append(g[index])
            start += size
        return tuple(grads)


def _tensor_sequence(tensors, op: str) -> list:
    """cat/stack's first argument: a list or tuple of Tensors (or of arrays / numbers)."""
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expected a list or tuple of Tensors, got "
                        f"{type(tensors).__name__}")
    try:
        return [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    except (TypeError, ValueError) as e:
        raise type(e)(f"{op}: every element must be a Tensor or an array of numbers ({e})") \
            from None


def cat(tensors, dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing dimension ``dim`` (``axis``: NumPy's name for it)."""
    dim = dim_arg("cat", dim, axis, default=0)
    tensors = _tensor_sequence(tensors, "cat")
    if not tensors:
        raise ValueError("cat: need at least one tensor")
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated (use stack)")
    dim = check_dim("cat", dim, ndim)
    for i, t in enumerate(tensors):
        if t.ndim != ndim or t.shape[:dim] + t.shape[dim + 1:] != \
                tensors[0].shape[:dim] + tensors[0].shape[dim + 1:]:
            raise ValueError(f"cat: tensor {i} has shape {t.shape}, which does not match shape "
                             f"{tensors[0].shape} outside dimension {dim}")
    return Cat.apply(*tensors, axis=dim)


def stack(tensors, dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join same-shaped tensors along a new dimension ``dim``."""
    dim = dim_arg("stack", dim, axis, default=0)
    tensors = _tensor_sequence(tensors, "stack")
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, expected {tensors[0].shape}")
    dim = check_dim("stack", dim, tensors[0].ndim + 1)  # one more place than there are dims
    return cat([unsqueeze(t, dim) for t in tensors], dim)


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> list:
    """Pieces of ``split_size`` along dim (the last may be smaller), or of the listed sizes."""
    dim = _dim_of_1d(x, dim, "split")
    length = x.shape[dim]
    sections = split_size_or_sections
    if _is_int(sections):
        step = int(sections)
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, length - s) for s in range(0, length, step)] or [0]
    else:
        if not isinstance(sections, (tuple, list)) or not all(_is_int(s) for s in sections):
            raise TypeError(f"split: split_size_or_sections must be an int or a list of ints, "
                            f"got {sections!r}")
        sizes = [int(s) for s in sections]
        if sum(sizes) != length or any(s < 0 for s in sizes):
            raise ValueError(f"split: sizes {sizes} do not add up to {length}, the length of "
                             f"dimension {dim} of shape {x.shape}")
    pieces, start = [], 0
    for size in sizes:
        pieces.append(x[(slice(None),) * dim + (slice(start, start + size),)])
        start += size
    return tuple(pieces)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> list:
    if not _is_int(chunks):
        raise TypeError(f"chunk: chunks must be an int, got {chunks!r}")
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    length = x.shape[_dim_of_1d(x, dim, "chunk")]
    return split(x, max(-(-length // chunks), 1), dim)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _dim_of_1d(x: Tensor, dim, op: str) -> int:
    """split and chunk cut a dimension, so a 0-d tensor (which has none) is refused."""
    dim = check_dim(op, dim, x.ndim)
    if x.ndim == 0:
        raise RuntimeError(f"{op} expects at least a 1-dimensional tensor")
    return dim
