"""What the fuzz test draws: tensors and arrays (random dtype, shape, memory layout, NaN/Inf),
and an argument of each *kind* ("tensor", "dim", "prob", ...) -- a valid one, or one that is
certainly wrong -- assembled into a ``Call`` by ``draw_call``. Used by
tests/test_fuzz_public_api.py; ``fuzz_harness.py`` runs and judges the calls."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from tinygrad_lite import Tensor

DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.bool_]
WRONG_TYPES = [None, "abc", ["a", "b"], {"a": 1}, 1j, object()]


@dataclass
class Arg:
    """A drawn argument: the value, and whether it is certainly invalid."""
    value: object
    bad: bool = False


# --------------------------------------------------------------------------------------------
# Tensors and arrays
# --------------------------------------------------------------------------------------------

def shapes(max_dims: int = 3, max_side: int = 4):
    return st.lists(st.integers(0, max_side), max_size=max_dims).map(tuple)


SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0]


@st.composite
def arrays(draw, dtype=None, shape=None, specials: bool = True):
    """A NumPy array of a random dtype and shape (0-size and 0-d included), with NaN/Inf among
    the floats, in a random memory layout: contiguous, reversed (negative strides), every other
    element of a wider array, or Fortran order. The values come from a drawn seed (drawing each
    element through hypothesis would make every example ~10x slower)."""
    dtype = np.dtype(dtype or draw(st.sampled_from(DTYPES)))
    shape = draw(shapes()) if shape is None else tuple(shape)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    values = rng.uniform(-10, 10, size=shape)
    if dtype.kind == "f" and specials and draw(st.booleans()):
        values = np.where(rng.random(shape) < 0.3, rng.choice(SPECIALS, size=shape), values)
    if dtype.kind == "b":
        values = values > 0
    base = np.asarray(values).astype(dtype)
    layout = draw(st.sampled_from(["c", "reversed", "strided", "fortran"]))
    if layout == "reversed":
        return np.flip(base)
    if layout == "strided" and base.ndim:
        wide = np.repeat(base, 2, axis=-1)
        return wide[..., ::2]
    if layout == "fortran" and base.ndim >= 2:  # (asfortranarray makes a 0-d array 1-d)
        return np.asfortranarray(base)
    return base


@st.composite
def tensors(draw, dtype=None, shape=None, grad=None):
    data = draw(arrays(dtype, shape))
    t = Tensor(data)
    if data.dtype.kind == "f" and (grad if grad is not None else draw(st.booleans())):
        t.requires_grad_(True)
    return t

# --------------------------------------------------------------------------------------------
# Calls
# --------------------------------------------------------------------------------------------

@dataclass
class Call:
    name: str
    fn: object
    args: list       # positional Args
    kwargs: dict     # name -> Arg
    result: object = None  # what the call returned (set by check_call)

    @property
    def bad(self) -> bool:
        return any(a.bad for a in self.args) or any(a.bad for a in self.kwargs.values())

    def values(self):
        return [a.value for a in self.args], {k: a.value for k, a in self.kwargs.items()}

    def __repr__(self) -> str:
        def show(v):
            if isinstance(v, Tensor):
                d = v.data
                return (f"Tensor(shape={d.shape}, dtype={d.dtype}, strides={d.strides}, "
                        f"requires_grad={v.requires_grad}, data={d.tolist()!r})")
            if isinstance(v, (list, tuple)) and any(isinstance(x, Tensor) for x in v):
                return "[" + ", ".join(show(x) for x in v) + "]"
            return repr(v).replace("\n", " ")
        parts = [show(a.value) for a in self.args]
        parts += [f"{k}={show(a.value)}" for k, a in self.kwargs.items()]
        marks = [k for k, a in self.kwargs.items() if a.bad] + \
            [f"arg{i}" for i, a in enumerate(self.args) if a.bad]
        return f"{self.name}({', '.join(parts)})" + (f"  [invalid: {marks}]" if marks else "")


# --------------------------------------------------------------------------------------------
# Argument kinds: a valid value, and certainly-wrong ones, for each kind of parameter
# --------------------------------------------------------------------------------------------

NUMBERS = st.one_of(st.integers(-5, 5), st.floats(-5, 5), st.sampled_from([np.nan, np.inf, -np.inf]),
                    st.booleans())
FLOAT_DTYPES = [np.float32, np.float64, np.float16]

# kind -> the certainly-wrong values (a function of the context tensor where it depends on it)
BAD = {
    "tensor": WRONG_TYPES,
    "float_tensor": WRONG_TYPES,
    "operand": [None, "abc", ["a", "b"], {"a": 1}, 1j, object()],
    "tensors": [None, "abc", [], [None], [1, "a"], object()],
    "dim": lambda ctx: [_ndim(ctx) + 1, -_ndim(ctx) - 2, 1.5, "0", ["a"], object(), 1j],
    "dim_new": lambda ctx: [_ndim(ctx) + 2, -_ndim(ctx) - 3, 1.5, "0", None, object()],
    "dim_or_none": lambda ctx: [_ndim(ctx) + 1, -_ndim(ctx) - 2, 1.5, "0", ["a"], object()],
    "dims_or_none": lambda ctx: [_ndim(ctx) + 1, 1.5, "0", ["a"], object(), (0, 0) if _ndim(ctx)
                                 else (5,)],
    "*dims": lambda ctx: [[_ndim(ctx) + 1] * max(_ndim(ctx), 1), ["a"] * _ndim(ctx) or ["a"],
                          [0] * (_ndim(ctx) + 1), [1.5] * max(_ndim(ctx), 1)],
    "*reshape": [["a"], [None], [2.5], [-2], [-1, -1]],
    "*size": [["a"], [None], [2.5], [-2], [2 ** 64], [[1, "a"]]],
    "size": [-1, 2.5, "3", None, 2 ** 64, [1, "a"], object()],
    # expand / broadcast_to: -1 keeps a dimension's size (PyTorch), so only -2 is negative-bad
    "expand_size": [-2, 2.5, "3", None, 2 ** 64, [1, "a"], object()],
    "bool": ["yes", "no", object()],  # (None means False to Python; PyTorch refuses it too)
    "dtype": ["float99", 5, object(), np.complex128, np.object_],
    "dtype_or_none": ["float99", 5, object(), np.complex128, np.object_],
    "number": ["a", object(), [1, "a"], {}, None, 1j],
    "number_or_none": ["a", object(), [1, "a"], {}, 1j],
    "nonneg": [np.nan, np.inf, -1.0, "0.1", None, 1j, object()],
    "prob": [np.nan, np.inf, -0.1, 1.5, "0.5", None, 1j],
    "open_prob": [np.nan, np.inf, 0.0, 1.0, -0.1, 1.5, "0.5", None],
    "betas": [(1.0, 0.9), (np.nan, 0.9), (0.9, -0.1), (0.9,), "ab", None, 0.9, (0.9, 0.999, 0.5)],
    "count": [0, -1, 2.5, "2", None, np.nan, object()],
    "count_or_none": [0, -1, 2.5, "2", np.nan, object()],
    "natural": [-1, 2.5, "2", None, np.nan, object()],
    "natural_or_none": [-1, 2.5, "2", np.nan, object()],
    "correction": ["1", 1.5, np.nan, object(), 1j],  # (PyTorch takes any integer)
    "int": [2.5, "1", None, np.nan, object(), 1j],
    # (not -1: torch.manual_seed takes [-2**63, 2**64) and remaps a negative seed to
    # 0xffff_ffff_ffff_ffff + seed, as its docs say; below or above that range it raises)
    "seed": [-2 ** 63 - 1, 2.5, "1", None, 2 ** 70, object()],
    "sections": [0, -1, [1, -1], "a", None, 2.5, ["a"]],
    "choice": ["bogus", None, 1, object()],
    "targets": lambda ctx: ["abc", None, object(), 1j],
    "ids": ["abc", None, object(), [1.5, 2.5]],
    "normalized_shape": lambda ctx: [-1, "a", None, (_side(ctx) + 1,), 2.5],
    "optional_tensor": ["abc", object(), 1j, ["a"]],
    "index": [1.5, "a", {}, object(), [1.5], 1j],
    "callable": [None, 1, "f", object()],
    "params": [None, "abc", [], [1, 2], [None], object()],
    "optimizer": [None, "sgd", object(), 1],
    "data": ["abc", {}, object(), 1j, [[1, 2], [3]], [None], ["a"]],
    "mask": ["abc", object(), 1j],
    "array": [None, "abc", [1.0, 2.0], 1.5, object(), np.array(["a"]), np.array([object()])],
    "generator": ["abc", 1, object()],
    "device": ["cuda", "abc", 5, object()],
    # Tensor.to(*args): at most one dtype and one device, or a tensor to take the dtype from
    "*to_args": [["float99"], [5], [object()], ["cuda"], [np.complex128], [np.float32, np.int64]],
    # randint(high, size=...) or randint(low, high, size=...): ints with low < high
    "*randint_args": [["a"], [2.5], [None], [5, 1], [0], [np.nan]],
}


def _ndim(ctx) -> int:
    return ctx.ndim if isinstance(ctx, Tensor) else 1


def _side(ctx) -> int:
    return ctx.shape[-1] if isinstance(ctx, Tensor) and ctx.ndim else 3


def bad_values(kind: str, ctx) -> list:
    values = BAD[kind.split(":")[0]]
    return values(ctx) if callable(values) else values


def _broadcast_partner_shape(d, ctx):
    shape = ctx.shape if isinstance(ctx, Tensor) else ()
    choice = d.draw(st.sampled_from(["same", "suffix", "ones", "scalar", "random"]))
    if choice == "same":
        return shape
    if choice == "suffix":
        return shape[d.draw(st.integers(0, len(shape))):]
    if choice == "ones":
        return tuple(1 if d.draw(st.booleans()) else n for n in shape)
    if choice == "scalar":
        return ()
    return d.draw(shapes())


def valid_value(d, kind: str, ctx):
    """A value of ``kind`` that a user could reasonably pass (it may still be refused, e.g. a
    dtype an op does not support, but a clean refusal is then fine)."""
    kind, _, option = kind.partition(":")
    n = _ndim(ctx)
    dim = st.integers(-max(n, 1), max(n, 1) - 1)
    if kind == "tensor":
        return d.draw(tensors())
    if kind == "float_tensor":
        dtype = ctx.dtype if isinstance(ctx, Tensor) and ctx.dtype.kind == "f" else None
        return d.draw(tensors(dtype=dtype or d.draw(st.sampled_from(FLOAT_DTYPES))))
    if kind == "mask":
        return d.draw(tensors(dtype=np.bool_, shape=_broadcast_partner_shape(d, ctx)))
    if kind == "operand":
        if d.draw(st.booleans()):
            return d.draw(NUMBERS)
        return d.draw(tensors(shape=_broadcast_partner_shape(d, ctx)))
    if kind == "tensors":
        count = d.draw(st.integers(1, 3))
        shape = ctx.shape if isinstance(ctx, Tensor) else d.draw(shapes())
        same = d.draw(st.booleans())
        dtype = d.draw(st.sampled_from(DTYPES))
        return [d.draw(tensors(dtype=dtype, shape=shape if same or i == 0 else None))
                for i in range(count)]
    if kind == "dim":
        return d.draw(dim)
    if kind == "dim_new":  # a new axis (stack, unsqueeze): one more place than dims
        return d.draw(st.integers(-n - 1, n))
    if kind == "dim_or_none":
        return d.draw(st.one_of(st.none(), dim))
    if kind == "dims_or_none":
        return d.draw(st.one_of(st.none(), dim, st.lists(st.integers(0, max(n - 1, 0)),
                                                         unique=True, max_size=n).map(tuple)))
    if kind == "*dims":
        return list(d.draw(st.permutations(range(n))))
    if kind == "*reshape":
        size = int(np.prod(ctx.shape)) if isinstance(ctx, Tensor) else 1
        factors = [f for f in range(1, size + 1) if size % f == 0] or [0]
        first = d.draw(st.sampled_from(factors))
        rest = size // first if first else 0
        shape = d.draw(st.sampled_from([[size], [first, rest], [first, -1], [-1], [first, 1, rest]]))
        return [tuple(shape)] if d.draw(st.booleans()) else shape
    if kind == "*size":
        shape = list(d.draw(shapes()))
        return [tuple(shape)] if d.draw(st.booleans()) and shape else shape
    if kind in ("size", "expand_size"):
        return d.draw(st.one_of(st.integers(0, 4), shapes()))
    if kind == "bool":
        return d.draw(st.booleans())
    if kind in ("dtype", "dtype_or_none"):
        none = [None] if kind == "dtype_or_none" else []
        return d.draw(st.sampled_from(DTYPES + none))
    if kind == "number":
        return d.draw(NUMBERS)
    if kind == "number_or_none":
        return d.draw(st.one_of(st.none(), NUMBERS))
    if kind == "nonneg":
        return d.draw(st.sampled_from([0.0, 1e-3, 0.1, 0.9, 1, 2.0]))
    if kind == "prob":
        return d.draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    if kind == "open_prob":
        return d.draw(st.sampled_from([0.1, 0.5, 0.9]))
    if kind == "betas":
        return d.draw(st.sampled_from([(0.9, 0.999), (0.0, 0.5), [0.5, 0.5]]))
    if kind == "count":
        return d.draw(st.integers(1, 4))
    if kind == "count_or_none":
        return d.draw(st.one_of(st.none(), st.integers(1, 4)))
    if kind in ("natural", "correction"):
        return d.draw(st.integers(0, 4))
    if kind == "natural_or_none":
        return d.draw(st.one_of(st.none(), st.integers(0, 4)))
    if kind == "int":
        return d.draw(st.integers(-3, 5))
    if kind == "seed":
        return d.draw(st.integers(-2 ** 63, 2 ** 64 - 1))
    if kind == "sections":
        length = ctx.shape[0] if isinstance(ctx, Tensor) and ctx.ndim else 0
        if d.draw(st.booleans()):
            return d.draw(st.integers(1, 4))
        cut = d.draw(st.integers(0, length))
        return [cut, length - cut]
    if kind == "choice":
        return d.draw(st.sampled_from(option.split("|")))
    if kind == "targets":  # class indices for logits ctx: (N, C) -> (N,), (C,) -> ()
        classes = _side(ctx) if isinstance(ctx, Tensor) and ctx.ndim else 2
        shape = (ctx.shape[:1] + ctx.shape[2:]) if isinstance(ctx, Tensor) and ctx.ndim > 1 else ()
        values = st.integers(-1, classes) if d.draw(st.booleans()) else \
            st.integers(0, max(classes - 1, 0))
        array = np.array(d.draw(st.lists(values, min_size=int(np.prod(shape)),
                                         max_size=int(np.prod(shape)))), dtype=np.int64)
        return Tensor(array.reshape(shape)) if d.draw(st.booleans()) else array.reshape(shape)
    if kind == "ids":
        rows = ctx.shape[0] if isinstance(ctx, Tensor) and ctx.ndim else 3
        return Tensor(d.draw(arrays(np.int64, d.draw(shapes(2))))) if not rows else \
            Tensor(np.array(d.draw(st.lists(st.integers(0, rows - 1), max_size=4)), np.int64))
    if kind == "normalized_shape":
        shape = ctx.shape if isinstance(ctx, Tensor) else (3,)
        k = d.draw(st.integers(min(1, len(shape)), len(shape)))
        return shape[len(shape) - k:] if k != 1 or d.draw(st.booleans()) else shape[-1]
    if kind == "optional_tensor":
        return d.draw(st.one_of(st.none(), tensors(shape=ctx.shape[-1:] if isinstance(
            ctx, Tensor) else None)))
    if kind == "index":
        side = ctx.shape[0] if isinstance(ctx, Tensor) and ctx.ndim else 1
        return d.draw(st.one_of(st.integers(-side, max(side - 1, 0)),
                                st.slices(max(side, 1)), st.just(Ellipsis), st.none(),
                                st.just((Ellipsis, 0)) if n else st.just(())))
    if kind == "callable":
        return d.draw(st.sampled_from([lambda g: None, lambda g: g * 2]))
    if kind == "params":
        return [d.draw(tensors(dtype=d.draw(st.sampled_from(FLOAT_DTYPES)), grad=True))
                for _ in range(d.draw(st.integers(1, 2)))]
    if kind == "optimizer":
        from tinygrad_lite.optim import SGD
        return SGD([Tensor(np.zeros(2, np.float32), requires_grad=True)], lr=0.1)
    if kind == "data":
        return d.draw(st.one_of(NUMBERS, arrays(), st.lists(NUMBERS, max_size=3),
                                st.lists(st.lists(st.integers(-3, 3), min_size=2, max_size=2),
                                         max_size=2)))
    if kind == "array":
        return d.draw(arrays())
    if kind == "generator":
        return d.draw(st.one_of(st.none(), st.integers(0, 2 ** 16).map(np.random.default_rng)))
    if kind == "device":
        return d.draw(st.sampled_from([None, "cpu"]))
    if kind == "*to_args":
        dtype = d.draw(st.sampled_from(DTYPES))
        return d.draw(st.sampled_from([[], [dtype], ["cpu"], ["cpu", dtype], [Tensor(np.zeros(
            1, dtype))]]))
    if kind == "*randint_args":
        low = d.draw(st.integers(-5, 5))
        high = low + d.draw(st.integers(1, 5))
        return [high] if high > 0 and d.draw(st.booleans()) else [low, high]
    raise LookupError(f"fuzz_harness: unknown argument kind {kind!r}")


def draw_call(d, name: str, fn, kinds: dict, ctx=None) -> Call:
    """Draw the arguments of ``fn`` (parameter name -> kind in ``kinds``; kind "omit" is never
    passed). In half of the calls one parameter gets a certainly-wrong value instead."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind is not p.VAR_KEYWORD and kinds[p.name] != "omit"]
    chosen = [p for p in params if p.default is p.empty or d.draw(st.booleans())]
    bad_at = d.draw(st.sampled_from([None] * max(len(chosen), 1) + list(range(len(chosen)))))
    call = Call(name, fn, [], {})
    for i, p in enumerate(chosen):
        kind = kinds[p.name]
        if i == bad_at:
            value, bad = d.draw(st.sampled_from(bad_values(kind, ctx))), True
        else:
            value, bad = valid_value(d, kind, ctx), False
        if ctx is None and isinstance(value, Tensor):
            ctx = value
        elif ctx is None and isinstance(value, list) and value and isinstance(value[0], Tensor):
            ctx = value[0]  # cat/stack: dims are relative to the tensors joined
        if p.kind is p.VAR_POSITIONAL:
            call.args += [Arg(v, bad) for v in value] or ([Arg(None, True)] if bad else [])
        elif p.kind is p.KEYWORD_ONLY or (p.default is not p.empty and not p.kind is
                                          p.POSITIONAL_ONLY and _keywords_ok(chosen, i)):
            call.kwargs[p.name] = Arg(value, bad)
        else:
            call.args.append(Arg(value, bad))
    return call


def _keywords_ok(chosen, i) -> bool:
    """An optional parameter goes by keyword unless a *args parameter follows it."""
    return not any(p.kind is p.VAR_POSITIONAL for p in chosen[i + 1:])
