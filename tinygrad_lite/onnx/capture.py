"""Graph capture: run the model and record every ``Function.apply``, as ``trace_forward`` does.

Why not read the autograd graph (``out._ctx``)? It holds only the ops that lead to a tensor
requiring grad: the slice of a positional table, the ops on a mask, or a model with frozen
weights would be missing. Wrapping ``Function.apply`` for the duration of the run sees every op
(under ``no_grad``, so no autograd graph is built at all), with the options it was given
(``axis``, ``shape``, ``index``, ...) -- the engine's own IR, one ``OpCall`` per op.

Every tensor an op reads is then one of: the output of an earlier op (``NodeRef``), a model
input (``InputRef``; also an index array that *is* the input, as an embedding's token ids), a
parameter or buffer of the model (``ParamRef``), or an array made outside the graph (a mask, a
fill value: a ``ConstRef`` after ``symbolic.fit_constant``).

The model runs several times (``symbolic.TracePlan``); ``capture`` lines the traces up op by op,
checks that they ran the same ops, and fits every number that moves (shapes, slice bounds)
as a formula in the dynamic dimensions. The result is a ``Graph`` for the ONNX builder.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from ..autograd import Function, no_grad
from ..tensor import Tensor
from ..trace import _call_site
from .symbolic import (CannotExpress, StaticConstant, TracePlan, fit_constant, fit_float,
                       fit_int)


# --------------------------------------------------------------------------------------------
# References to values
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NodeRef:
    index: int      # the output of graph node number ``index``


@dataclass(frozen=True)
class InputRef:
    index: int      # model input number ``index``


@dataclass(frozen=True)
class ParamRef:
    name: str       # a parameter or buffer, by its state_dict name


@dataclass(frozen=True)
class ConstRef:
    index: int      # Graph.constants[index]


@dataclass
class Leaf:
    """An array made outside the graph, as one trace saw it (fitted across traces later)."""
    array: np.ndarray


# --------------------------------------------------------------------------------------------
# Recording one run
# --------------------------------------------------------------------------------------------

@dataclass
class OpCall:
    """One ``Function.apply`` of a run: the op, what it read, its options, what it made."""
    op: type
    inputs: tuple
    options: dict
    output: Tensor
    version: int    # the output's version counter when made (catches later in-place changes)
    where: str      # the line that ran it, e.g. "tinygrad_lite/nn/attention.py:99 in forward"


class record_ops:
    """Context manager: ``calls`` gets one OpCall per op run in the block (ops that an op's own
    forward runs are part of that op, so only the outermost call is recorded). ``where``: also
    find each op's line of code (walks the stack: the first run only)."""

    def __init__(self, where: bool = True):
        self.calls: list[OpCall] = []
        self.where = where

    def __enter__(self):
        self._original_apply = Function.__dict__["apply"]
        original, calls, depth, where = self._original_apply.__func__, self.calls, [0], self.where

        def recording_apply(cls, *inputs, **options):
            depth[0] += 1
            try:
                out = original(cls, *inputs, **options)
            finally:
                depth[0] -= 1
            if depth[0] == 0:
                calls.append(OpCall(cls, inputs, dict(options), out, out._version[0],
                                    _call_site(sys._getframe(1))[0] if where else "?"))
            return out

        Function.apply = classmethod(recording_apply)
        return self

    def __exit__(self, *exc):
        Function.apply = self._original_apply
        return False


def run_model(model, arrays: list, where: bool = True) -> tuple:
    """Run ``model`` on tensors made from ``arrays``; returns (calls, input tensors, outputs)."""
    inputs = [Tensor._make(a) for a in arrays]
    with no_grad(), record_ops(where) as recording:
        result = model(*inputs)
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    for i, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"onnx.export: the model returned {type(out).__name__} (output "
                            f"{i}); export needs a Tensor or a tuple of Tensors")
    return recording.calls, inputs, outputs


# --------------------------------------------------------------------------------------------
# One trace as references
# --------------------------------------------------------------------------------------------

class _Referencer:
    """Names every tensor and array of one trace by what it is (see the module docstring)."""

    def __init__(self, calls: list, inputs: list, params: dict):
        self.inputs, self.params = inputs, params
        self.made = {id(c.output): (k, c) for k, c in enumerate(calls)}

    def array(self, array: np.ndarray):
        for i, t in enumerate(self.inputs):  # an index array that is the input (token ids)
            if array is t.data or (array.base is t.data and array.shape == t.shape) or (
                    array.dtype == t.dtype and array.shape == t.shape and
                    np.array_equal(array, t.data)):
                return InputRef(i)
        return Leaf(np.array(array, copy=True))  # (copied: the model might change it later)

    def tensor(self, t: Tensor, reader: str):
        if id(t) in self.made:
            k, call = self.made[id(t)]
            if t._version[0] != call.version:
                raise NotImplementedError(
                    f"onnx.export: the output of {call.op.__name__} (at {call.where}) was "
                    f"changed in place (+=, add_, x[...] = ...) before {reader} read it; "
                    f"in-place updates are not recorded as ops: write them out of place")
            return NodeRef(k)
        for i, x in enumerate(self.inputs):
            if t is x:
                return InputRef(i)
        if id(t) in self.params:
            return ParamRef(self.params[id(t)])
        return self.array(t.data)

    def options(self, value, reader: str):
        """An option with its tensors and arrays replaced by references."""
        if isinstance(value, Tensor):
            return self.tensor(value, reader)
        if isinstance(value, np.ndarray):
            return self.array(value)
        if isinstance(value, (tuple, list)):
            return type(value)(self.options(v, reader) for v in value)
        if isinstance(value, dict):
            return {k: self.options(v, reader) for k, v in value.items()}
        return value


@dataclass
class _TracedOp:
    op: type
    inputs: list
    options: dict
    input_types: list   # (dtype, ndim) of each input
    dtype: np.dtype
    ndim: int
    where: str


def _describe(calls: list, inputs: list, outputs: list, params: dict) -> tuple:
    refer = _Referencer(calls, inputs, params)
    ops = []
    for call in calls:
        reader = f"{call.op.__name__} (at {call.where})"
        ops.append(_TracedOp(
            call.op, [refer.tensor(t, reader) for t in call.inputs],
            refer.options(call.options, reader), [(t.dtype, t.ndim) for t in call.inputs],
            call.output.dtype, call.output.ndim, call.where))
    returned = [(refer.tensor(t, "the model's return"), t.shape, t.dtype) for t in outputs]
    return ops, returned


# --------------------------------------------------------------------------------------------
# Lining the traces up: the Graph
# --------------------------------------------------------------------------------------------

@dataclass
class Node:
    """One op of the exported graph: options hold DimExprs where a number follows the dynamic
    axes, and references where the engine had tensors or arrays."""
    index: int
    op: type
    inputs: list
    options: dict
    input_types: list
    dtype: np.dtype
    ndim: int
    where: str


@dataclass
class Graph:
    nodes: list
    outputs: list           # references
    output_shapes: list     # per output: a tuple of ints / DimExprs
    output_dtypes: list
    constants: list = field(default_factory=list)   # symbolic.StaticConstant etc.


class _Unifier:
    """Turns the same op (or option) seen in every trace into one graph node (or option)."""

    def __init__(self, plan: TracePlan):
        self.plan = plan
        self.constants, self._constant_keys = [], {}
        self.where = ""  # the op being unified, for the error messages

    def fail(self, what: str, values, reason: str):
        shown = ", ".join(f"{v if isinstance(v, str) else repr(v)} at {self.plan.describe(i)}"
                          for i, v in enumerate(values))
        raise NotImplementedError(f"onnx.export: {self.where}: {what} is {shown}: {reason}"
                                  ) from None

    def constant(self, arrays: list, what: str) -> ConstRef:
        try:
            fitted = fit_constant(arrays, self.plan)
        except CannotExpress as e:
            self.fail(f"{what} (an array made outside the graph, with NumPy: an index from "
                      f"argmax/topk, a comparison x > y, a mask)",
                      [f"{a.dtype}{list(a.shape)}" for a in arrays],
                      f"{e}, so the file cannot compute it. Make it with tensor operations, or "
                      f"from a buffer of the model")
        # one copy of each distinct constant (every attention layer builds the same mask)
        if isinstance(fitted, StaticConstant):  # (repr would shorten a big array with ...)
            key = (fitted.array.dtype.str, fitted.array.shape, fitted.array.tobytes())
        else:
            key = repr(fitted)
        if key not in self._constant_keys:
            self._constant_keys[key] = len(self.constants)
            self.constants.append(fitted)
        return ConstRef(self._constant_keys[key])

    def value(self, values: list, what: str):
        """One option (or input reference) from its value in every trace."""
        first = values[0]
        if all(isinstance(v, Leaf) for v in values):
            return self.constant([v.array for v in values], what)
        if any(_kind(v) != _kind(first) for v in values):
            self.fail(what, values, "it is a different kind of value in different runs")
        if isinstance(first, (bool, np.bool_)) or first is None:
            pass  # compared below
        elif isinstance(first, (int, np.integer)):
            try:
                return fit_int([int(v) for v in values], self.plan)
            except CannotExpress as e:
                self.fail(what, values, str(e))
        elif isinstance(first, (float, np.floating)):
            try:
                return fit_float([float(v) for v in values], self.plan)
            except CannotExpress as e:
                self.fail(what, values, str(e))
        elif isinstance(first, (tuple, list)):
            if any(len(v) != len(first) for v in values):
                self.fail(what, values, "its length changes")
            return type(first)(self.value([v[i] for v in values], f"{what}[{i}]")
                               for i in range(len(first)))
        elif isinstance(first, slice):
            return slice(*(self.value([getattr(v, part) for v in values], f"{what}.{part}")
                           for part in ("start", "stop", "step")))
        elif isinstance(first, dict):
            if any(v.keys() != first.keys() for v in values):
                self.fail(what, values, "its keys change")
            return {k: self.value([v[k] for v in values], f"{what}[{k!r}]") for k in first}
        if any(v != first for v in values):
            self.fail(what, values, "it changes between runs of the model")
        return first


def _kind(value):
    """What must agree between runs for a value to be one option: a NumPy int may stand for a
    Python int, but not for a float or a bool."""
    for kind in (bool, np.bool_), (int, np.integer), (float, np.floating):
        if isinstance(value, kind):
            return kind
    return type(value)


def capture(model, example: list, dynamic: dict, supported) -> Graph:
    """Trace ``model`` at the sizes of ``symbolic.TracePlan`` and return the unified Graph.

    ``example``: the input arrays; ``dynamic``: {dimension name: [(input index, axis), ...]};
    ``supported``: the op classes that have an ONNX mapping (others are refused before the
    extra runs)."""
    base_sizes = {}
    for name, places in dynamic.items():
        sizes = {example[i].shape[axis] for i, axis in places}
        if len(sizes) > 1 or 0 in sizes:
            raise ValueError(f"onnx.export: the axes named {name!r} in dynamic_axes have sizes "
                             f"{sorted(sizes)} in the example inputs; they need one size, > 0")
        base_sizes[name] = sizes.pop()
    plan = TracePlan(base_sizes)
    params = {id(t): name for name, t in [*model.named_parameters(), *model.named_buffers()]}

    traces = []
    for i, sizes in enumerate(plan.sizes):
        check = i == len(plan.sizes) - 1
        try:
            calls, inputs, outputs = run_model(model, _inputs_at(example, dynamic, sizes, check),
                                               where=i == 0)
        except Exception as e:
            if i == 0:
                raise
            raise RuntimeError(
                f"onnx.export: running the model at {plan.describe(i)} (to see which sizes "
                f"follow the dynamic axes) failed: {e}. The extra runs use sizes 1 or 2 below "
                f"the example's (above them when those are < 4): give example inputs for which "
                f"those sizes are valid too") from e
        if i == 0:
            _refuse_unsupported(calls, supported)
        traces.append(_describe(calls, inputs, outputs, params))
    return _unify(traces, plan)


def _inputs_at(example: list, dynamic: dict, sizes: dict, shuffle: bool) -> list:
    """The example inputs cut or extended (by repeating their elements) to ``sizes`` along their
    dynamic axes; with ``shuffle``, their values also moved by one place (the check run: an
    array the model computes from the values with NumPy then changes, and is caught)."""
    arrays = []
    for i, array in enumerate(example):
        for name, places in dynamic.items():
            for _, axis in (place for place in places if place[0] == i):
                array = np.take(array, np.arange(sizes[name]) % array.shape[axis], axis=axis)
        if shuffle:
            array = np.roll(array.ravel(), 1).reshape(array.shape)
        arrays.append(np.asarray(array, order="C"))
    return arrays


def _refuse_unsupported(calls: list, supported) -> None:
    for call in calls:
        if call.op not in supported:
            names = ", ".join(sorted(op.__name__ for op in supported))
            raise NotImplementedError(
                f"onnx.export: op {call.op.__name__} ({call.op.__module__}, run at "
                f"{call.where}) has no ONNX mapping; supported: {names}")


_BRANCHES = ("the model runs different ops at different sizes or values (a Python if or loop on "
             "a size or a value?), which one ONNX graph cannot do")


def _unify(traces: list, plan: TracePlan) -> Graph:
    unifier = _Unifier(plan)
    first_ops, first_outputs = traces[0]
    nodes = []
    for k, op in enumerate(first_ops):
        unifier.where = f"op #{k} {op.op.__name__} (at {op.where})"
        seen = [t[0][k] if k < len(t[0]) else None for t in traces]
        if any(s is None or s.op is not op.op for s in seen):
            unifier.fail("the sequence of ops", [s.op.__name__ if s else "nothing" for s in seen],
                         _BRANCHES)
        inputs = [unifier.value([s.inputs[i] for s in seen], f"input {i}")
                  for i in range(len(op.inputs))]
        if any(s.options.keys() != op.options.keys() for s in seen):
            unifier.fail("its options", [sorted(s.options) for s in seen], "they change")
        options = {name: unifier.value([s.options[name] for s in seen], f"its option {name!r}")
                   for name in op.options}
        unifier.value([s.dtype for s in seen], "the dtype of its result")
        nodes.append(Node(k, op.op, inputs, options, op.input_types, op.dtype, op.ndim,
                          op.where))
    if any(len(t[0]) != len(first_ops) for t in traces):
        unifier.where = "the model"
        unifier.fail("the number of ops", [len(t[0]) for t in traces], _BRANCHES)
    unifier.where = "the model's return"
    outputs = [unifier.value([t[1][i][0] for t in traces], f"output {i}")
               for i in range(len(first_outputs))]
    shapes = []  # each output's shape as ints / DimExprs (None for an axis no formula fits)
    for i in range(len(outputs)):
        shape = []
        for axis in range(len(first_outputs[i][1])):
            try:
                shape.append(fit_int([t[1][i][1][axis] for t in traces], plan))
            except CannotExpress:
                shape.append(None)
        shapes.append(tuple(shape))
    return Graph(nodes, outputs, shapes, [dtype for _, _, dtype in first_outputs],
                 unifier.constants)
