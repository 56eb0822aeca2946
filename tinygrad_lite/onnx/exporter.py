"""``export``: a model made of this package's layers, as an ONNX file that ONNX Runtime runs."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import numpy as np
import onnx

from .. import __version__
from ..nn.module import Module
from ..tensor import Tensor
from ..train.checkpoint import atomic_write
from .builder import GraphBuilder, value_info
from .capture import capture
from .op_table import OP_TABLE, SUPPORTED_OPS
from .symbolic import DimExpr

MIN_OPSET = 17  # LayerNormalization is new in opset 17


def export(model, args, f, *, input_names=None, output_names=None, dynamic_axes=None,
           opset_version: int = MIN_OPSET) -> onnx.ModelProto:
    """Write ``model`` as an ONNX file at ``f``, traced on the example inputs ``args``.

    The arguments mean what they mean in ``torch.onnx.export``: ``args`` is the model's input
    (a Tensor or NumPy array) or a tuple of them; ``input_names`` / ``output_names`` name the
    graph's inputs and outputs (default: the names of ``model.forward``'s parameters, and
    ``output`` / ``output_0, output_1, ...``); ``dynamic_axes`` maps an input or output name to
    its axes that may change size, ``{axis: "name"}`` or a list of axes (e.g.
    ``{"idx": {0: "batch", 1: "time"}}``); ``opset_version`` is the ONNX opset (>= 17).

    How: the model runs in eval mode (no dropout; each module's mode is restored afterwards)
    under ``no_grad`` while every ``Function.apply`` is recorded (``capture.py``); each op
    becomes ONNX nodes (``op_table.py``). Parameters and buffers become initializers with their
    ``state_dict`` names and dtypes; integer inputs are int64 (token ids); arrays the model
    makes with NumPy (a causal mask) become constants, or -- when their shape follows the
    dynamic axes -- a few nodes that rebuild them at run time. With dynamic axes the model is
    also run at other sizes (1 or 2 shorter, or longer if the axis is that short), so that every
    shape, slice bound and mask that follows them is computed from the inputs' sizes in the
    file: one file takes any batch size and any sequence length (up to what the model itself
    allows, e.g. the GPT's ``context_length``). A last run with other sizes and shuffled input
    values checks all of it.

    Supported ops (``tinygrad_lite.ops``): Abs, Add, AddScalar, Cast, Cat, Clip, Clone, Cos,
    Div, DivScalar, Erf, Exp, Expand, Gather, GetItem (ints, slices, None, ``...``, or one
    integer index array), Hardswish, LayerNormOp, LeakyRelu, LinearOp, Log, LogSoftmax,
    LogSumExp, MatMul, Max, Maximum, Minimum, Mish, Mul, MulScalar, Neg, Permute, Pow,
    PowScalar, RSubScalar, Relu, Relu6, Reshape, Sigmoid, Sign, Silu, Sin, Softmax, Softplus,
    Sqrt, Sub, Sum, Tanh, Triangle, Where. Any other op (CrossEntropy, the backward-only
    IndexAdd and ScatterAdd, a Function of your own) raises ``NotImplementedError("onnx.export:
    op Foo (module, run at file:line) has no ONNX mapping; supported: ...")`` before anything
    is written. So does what a trace cannot see, as soon as the runs show it: an in-place
    update of a tensor in forward, an array computed from the input values with NumPy (an
    argmax index, a comparison) that changes between the runs, or ops that change with the
    sizes or values (a Python ``if`` on them).

    The file is checked with ``onnx.checker.check_model(full_check=True)`` and written
    atomically (a temporary file renamed over ``f``). Returns the ``onnx.ModelProto``.
    """
    if not isinstance(model, Module):
        raise TypeError(f"onnx.export: model must be a tinygrad_lite.nn.Module, got "
                        f"{type(model).__name__}")
    example = _example_arrays(args)
    path = _path(f)
    opset = _opset(opset_version)
    input_names = _names("input_names", input_names, len(example)) or \
        _default_input_names(model, len(example))
    output_names = _names("output_names", output_names)  # (their number is checked below)
    dims, output_axes = _dynamic_axes(dynamic_axes, input_names, output_names, example)

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        graph = capture(model, example, dims, OP_TABLE)
    finally:
        for module, mode in modes:
            object.__setattr__(module, "training", mode)
    output_names = _names("output_names", output_names, len(graph.outputs)) or (
        ["output"] if len(graph.outputs) == 1 else
        [f"output_{i}" for i in range(len(graph.outputs))])
    _check_output_keys(output_axes, input_names, output_names)
    if set(output_names) & set(input_names):
        raise ValueError(f"onnx.export: output_names {output_names} reuse an input name "
                         f"({input_names})")

    proto = _build(model, graph, example, input_names, output_names, dims, output_axes, opset)
    serialized = proto.SerializeToString()  # (once: a big vocabulary makes it slow)
    onnx.checker.check_model(serialized, full_check=True)
    atomic_write(path, lambda file: file.write(serialized))
    return proto


def _build(model, graph, example, input_names, output_names, dims, output_axes, opset):
    """The ModelProto of the captured graph: each node through the op table, then the graph's
    inputs and outputs with their fixed sizes and dimension names."""
    parameters = {name: t.data for name, t in [*model.named_parameters(),
                                               *model.named_buffers()]}
    builder = GraphBuilder(graph, input_names, [a.dtype for a in example],
                           {name: places[0] for name, places in dims.items()}, parameters,
                           opset)
    for node in graph.nodes:
        builder.start(node)
        builder.names[node.index] = OP_TABLE[node.op](builder, node)
    builder.prefix = builder.doc = ""
    inputs = []
    for i, (name, array) in enumerate(zip(input_names, example)):
        named = {axis: dim for dim, places in dims.items() for j, axis in places if j == i}
        inputs.append(value_info(name, array.dtype, [named.get(axis, n)
                                                     for axis, n in enumerate(array.shape)]))
    outputs = []
    for name, ref, shape, dtype in zip(output_names, graph.outputs, graph.output_shapes,
                                       graph.output_dtypes):
        builder.nodes.append(onnx.helper.make_node("Identity", [builder.value(ref)], [name],
                                                   name=name))
        outputs.append(value_info(name, dtype, _output_dims(name, shape,
                                                            output_axes.get(name, {}))))
    return builder.model(inputs, outputs, producer=f"tinygrad_lite {__version__}")


# --------------------------------------------------------------------------------------------
# The arguments
# --------------------------------------------------------------------------------------------

def _example_arrays(args) -> list:
    """The example inputs as arrays; integer ones as int64 (what the graph input will be)."""
    items = list(args) if isinstance(args, (tuple, list)) else [args]
    arrays = []
    for i, item in enumerate(items):
        if not isinstance(item, (Tensor, np.ndarray)):
            raise TypeError(f"onnx.export: args must be a Tensor (or NumPy array) or a tuple "
                            f"of them, the model's inputs; argument {i} is "
                            f"{type(item).__name__}")
        array = item.data if isinstance(item, Tensor) else item
        if array.dtype.kind not in "fiub":
            raise TypeError(f"onnx.export: argument {i} has dtype {array.dtype}; inputs hold "
                            f"numbers or bools")
        arrays.append(np.asarray(array, dtype=np.int64 if array.dtype.kind in "iu" else
                                 array.dtype, order="C"))
    return arrays


def _path(f) -> Path:
    if not isinstance(f, (str, os.PathLike)):
        raise TypeError(f"onnx.export: f must be a file path (str or os.PathLike), got "
                        f"{type(f).__name__}")
    return Path(f)


def _opset(opset_version) -> int:
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset_version, bool) or not isinstance(opset_version, (int, np.integer)):
        raise TypeError(f"onnx.export: opset_version must be an int, got {opset_version!r}")
    if not MIN_OPSET <= opset_version <= newest:
        raise ValueError(f"onnx.export: opset_version must be in {MIN_OPSET}..{newest} (opset "
                         f"{MIN_OPSET} brings LayerNormalization; {newest} is the newest this "
                         f"onnx package knows), got {opset_version}")
    return int(opset_version)


def _names(argument: str, names, count: int | None = None):
    """input_names / output_names: None, or distinct non-empty strings (``count`` of them)."""
    if names is None:
        return None
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"onnx.export: {argument} must be a list of non-empty strings, got "
                        f"{names!r}")
    what = argument.split("_")[0]  # input / output
    if len(set(names)) != len(names):
        raise ValueError(f"onnx.export: {argument} {list(names)} repeat a name")
    if count is not None and len(names) != count:
        raise ValueError(f"onnx.export: {argument} {list(names)} must be {count} names, one per "
                         f"{what} of the model")
    return list(names)


def _default_input_names(model, count: int) -> list:
    """The names of ``model.forward``'s positional parameters (``idx`` for the GPT)."""
    parameters = [p.name for p in inspect.signature(model.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return parameters[:count] if len(parameters) >= count else \
        [f"input_{i}" for i in range(count)]


def _dynamic_axes(dynamic_axes, input_names: list, output_names, example: list) -> tuple:
    """({dimension name: [(input index, axis), ...]}, {output name: {axis: dimension name}})."""
    if dynamic_axes is None:
        return {}, {}
    if not isinstance(dynamic_axes, dict):
        raise TypeError(f"onnx.export: dynamic_axes must be a dict {{input or output name: "
                        f"{{axis: name}} or [axes]}}, got {type(dynamic_axes).__name__}")
    dims, output_axes = {}, {}
    for key, axes in dynamic_axes.items():
        if not isinstance(key, str):
            raise TypeError(f"onnx.export: dynamic_axes keys must be input or output names, "
                            f"got {key!r}")
        if isinstance(axes, (list, tuple)):
            axes = {axis: f"{key}_dynamic_axes_{i + 1}" for i, axis in enumerate(axes)}
        if not isinstance(axes, dict) or not all(
                isinstance(a, (int, np.integer)) and not isinstance(a, bool) and
                isinstance(n, str) and n for a, n in axes.items()):
            raise TypeError(f"onnx.export: dynamic_axes[{key!r}] must be {{axis: name}} or a "
                            f"list of axes (ints), got {axes!r}")
        if key in input_names:
            i = input_names.index(key)
            for axis, name in axes.items():
                if not -example[i].ndim <= axis < example[i].ndim:
                    raise ValueError(f"onnx.export: dynamic_axes[{key!r}] has axis {axis}, but "
                                     f"input {key!r} has shape {example[i].shape}")
                dims.setdefault(name, []).append((i, int(axis) % example[i].ndim))
        else:
            output_axes[key] = {int(a): n for a, n in axes.items()}
    if output_names is not None:  # (else checked once the model's outputs are known)
        _check_output_keys(output_axes, input_names, output_names)
    return dims, output_axes


def _check_output_keys(output_axes: dict, input_names: list, output_names: list) -> None:
    for key in output_axes:
        if key not in output_names:
            raise ValueError(f"onnx.export: dynamic_axes names {key!r}, which is neither an "
                             f"input ({', '.join(input_names)}) nor an output "
                             f"({', '.join(output_names)})")


def _output_dims(name: str, shape: tuple, named: dict) -> list:
    """An output's axes: the name dynamic_axes gives, else a fixed size, else the dimension it
    equals (e.g. "batch"), else unknown."""
    for axis in named:
        if not -len(shape) <= axis < len(shape):
            raise ValueError(f"onnx.export: dynamic_axes[{name!r}] has axis {axis}, but output "
                             f"{name!r} has {len(shape)} dimensions")
    named = {a % len(shape): n for a, n in named.items()}
    dims = []
    for axis, entry in enumerate(shape):
        if axis in named:
            dims.append(named[axis])
        elif isinstance(entry, DimExpr):
            plain = entry.offset == 0 and entry.scale == 1 and len(entry.dims) == 1
            dims.append(entry.dims[0] if plain else None)
        else:
            dims.append(entry)
    return dims


__all__ = ["export", "SUPPORTED_OPS"]
