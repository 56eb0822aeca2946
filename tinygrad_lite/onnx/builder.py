"""The ONNX side: a ``GraphBuilder`` collects nodes, initializers and constants while the op table
(``op_table.py``) translates the captured graph node by node, and hands back a ``ModelProto``.

Names: every engine op becomes one or more ONNX nodes named after it (``LinearOp_12``,
``LinearOp_12/Add``), with the line of code that ran it as the node's doc string; parameters
keep their ``state_dict`` names (``blocks.0.ln1.weight``); sizes read from the inputs at run
time are ``shape/<dimension name>``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .capture import ConstRef, InputRef, NodeRef, ParamRef
from .symbolic import (DimExpr, FilledConstant, Reciprocal, StaticConstant, TriangleConstant)


def onnx_type(dtype) -> int:
    """The ONNX element type of a NumPy dtype (TensorProto.FLOAT for float32, ...)."""
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class GraphBuilder:
    """Collects the ONNX graph. ``node(...)`` adds one node and returns its output's name; the
    helpers below turn constants, sizes and references into ONNX values."""

    def __init__(self, graph, input_names: list, input_dtypes: list, dims: dict,
                 parameters: dict, opset: int):
        self.graph = graph            # the captured graph (capture.Graph)
        self.input_names, self.input_dtypes = input_names, input_dtypes
        self.dims = dims              # dimension name -> (input index, axis)
        self.parameters = parameters  # state_dict name -> array
        self.opset = opset
        self.nodes, self.initializers = [], []
        self.names = {}               # graph node index -> the ONNX value holding its result
        self.prefix, self.doc = "", ""
        self._count = {}
        self._cache = {}              # constants, sizes and parameters already added

    # -- nodes ---------------------------------------------------------------------------------

    def node(self, op_type: str, inputs: list, **attributes) -> str:
        """Add ``op_type`` reading ``inputs`` (ONNX value names); returns its output's name."""
        base = f"{self.prefix}/{op_type}" if self.prefix else op_type
        n = self._count.get(base, 0)
        self._count[base] = n + 1
        name = base if n == 0 else f"{base}_{n}"
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name,
                                           doc_string=self.doc, **attributes))
        return name

    def start(self, node) -> None:
        """Name what follows after the engine op ``node`` (e.g. ``LinearOp_12``)."""
        self.prefix, self.doc = f"{node.op.__name__}_{node.index}", node.where

    def cast(self, name: str, from_dtype, to_dtype) -> str:
        if np.dtype(from_dtype) == np.dtype(to_dtype):
            return name
        return self.node("Cast", [name], to=onnx_type(to_dtype))

    # -- the inputs of an engine op --------------------------------------------------------------

    def value(self, ref) -> str:
        """The ONNX name of a reference from the captured graph."""
        if isinstance(ref, NodeRef):
            return self.names[ref.index]
        if isinstance(ref, InputRef):
            return self.input_names[ref.index]
        if isinstance(ref, ParamRef):
            if ("param", ref.name) not in self._cache:
                self.initializers.append(numpy_helper.from_array(self.parameters[ref.name],
                                                                 ref.name))
                self._cache["param", ref.name] = ref.name
            return ref.name
        if isinstance(ref, ConstRef):
            return self._constant(ref.index)
        raise TypeError(f"onnx.export: internal error: {ref!r} is not a reference")

    def dtype_of(self, ref) -> np.dtype:
        """The dtype of a model input or of a constant (an index array's)."""
        if isinstance(ref, InputRef):
            return np.dtype(self.input_dtypes[ref.index])
        constant = self.graph.constants[ref.index]
        return constant.array.dtype if isinstance(constant, StaticConstant) else constant.dtype

    def arg(self, node, i: int, dtype=None) -> str:
        """Input ``i`` of ``node``, converted to ``dtype`` if given (ONNX ops want one type where
        NumPy promotes: int64 + float32, float32 + float64)."""
        name = self.value(node.inputs[i])
        return name if dtype is None else self.cast(name, node.input_types[i][0], dtype)

    # -- constants ----------------------------------------------------------------------------

    def const(self, value, dtype) -> str:
        """A Constant node holding ``value`` as an array of ``dtype`` (one per distinct value)."""
        array = np.asarray(value, dtype=dtype)
        key = ("const", array.dtype.str, array.shape, array.tobytes())
        if key not in self._cache:
            name = f"const_{len(self._cache)}"
            self.nodes.append(helper.make_node(
                "Constant", [], [name], name=name,
                value=numpy_helper.from_array(array.copy(order="C"), name)))
            self._cache[key] = name
        return self._cache[key]

    def number(self, value, dtype) -> str:
        """A 0-d value of ``dtype`` for an op's number option: a constant, or ``1 / size`` read
        from the inputs (a Reciprocal: computed in float64, as Python computed it)."""
        if isinstance(value, Reciprocal):
            count = self.cast(self.scalar(value.count), np.int64, np.float64)
            return self.cast(self.node("Div", [self.const(1.0, np.float64), count]),
                             np.float64, dtype)
        if isinstance(value, DimExpr):
            return self.cast(self.scalar(value), np.int64, dtype)
        return self.const(value, dtype)

    def _constant(self, index: int) -> str:
        if ("constant", index) in self._cache:
            return self._cache["constant", index]
        constant = self.graph.constants[index]

        def build():
            if isinstance(constant, StaticConstant):
                return self.const(constant.array, constant.array.dtype)
            if isinstance(constant, FilledConstant):
                return self.node("Expand", [self.const(constant.value, constant.dtype),
                                            self.ints(constant.shape)])
            return self._triangle(constant)
        self._cache["constant", index] = self._global(
            build, f"constant_{index}", f"{type(constant).__name__}: an array the model made "
                                        f"with NumPy, rebuilt at the current sizes")
        return self._cache["constant", index]

    def _triangle(self, c: TriangleConstant) -> str:
        """mask[i, j] = (j - i >= k) or (j - i <= k), from Range over the current sizes."""
        rows, cols = (self.node("Range", [self.const(0, np.int64), self.scalar(n),
                                          self.const(1, np.int64)]) for n in c.shape[-2:])
        diff = self.node("Sub", [self.node("Unsqueeze", [cols, self.ints([0])]),
                                 self.node("Unsqueeze", [rows, self.ints([1])])])  # (rows, cols)
        mask = self.node("GreaterOrEqual" if c.upper else "LessOrEqual",
                         [diff, self.const(c.k, np.int64)])
        if not (c.dtype == np.bool_ and c.inside and not c.outside):
            mask = self.node("Where", [mask, self.const(c.inside, c.dtype),
                                       self.const(c.outside, c.dtype)])
        if len(c.shape) > 2:
            mask = self.node("Expand", [mask, self.ints(c.shape)])
        return mask

    # -- sizes --------------------------------------------------------------------------------

    def dim(self, name: str) -> str:
        """The size of dynamic dimension ``name``, read from its input: a 1-element int64."""
        if ("dim", name) not in self._cache:
            i, axis = self.dims[name]
            self._cache["dim", name] = self._global(
                lambda: self.node("Shape", [self.input_names[i]], start=axis, end=axis + 1),
                f"shape/{name}")
        return self._cache["dim", name]

    def size(self, expr: DimExpr) -> str:
        """``offset + scale * product(dims)`` as a 1-element int64."""
        if ("size", expr) not in self._cache:
            def build():
                value = self.dim(expr.dims[0])
                for name in expr.dims[1:]:
                    value = self.node("Mul", [value, self.dim(name)])
                if expr.scale != 1:
                    value = self.node("Mul", [value, self.ints([expr.scale])])
                if expr.offset:
                    value = self.node("Add", [value, self.ints([expr.offset])])
                return value
            self._cache["size", expr] = self._global(build, f"shape/{expr}")
        return self._cache["size", expr]

    def _global(self, build, prefix: str, doc: str = "a size read from the inputs") -> str:
        """Run ``build`` with nodes named ``prefix``: sizes and constants are shared by every op
        that uses them, so they are named after what they are, not after the first op that
        asked."""
        saved = self.prefix, self.doc
        self.prefix, self.doc = prefix, doc
        try:
            return build()
        finally:
            self.prefix, self.doc = saved

    def ints(self, entries) -> str:
        """A 1-D int64 tensor of ``entries`` (ints and DimExprs): a constant when every entry
        is one, else the pieces concatenated at run time."""
        if all(not isinstance(e, DimExpr) for e in entries):
            return self.const([int(e) for e in entries], np.int64)
        key = ("ints", tuple(entries))
        if key not in self._cache:  # e.g. shape/(batch, time, 4, 8), shared by every reshape
            self._cache[key] = self._global(lambda: self._concat(entries),
                                            f"shape/({', '.join(map(str, entries))})")
        return self._cache[key]

    def _concat(self, entries) -> str:
        pieces, run = [], []
        for e in entries:
            if isinstance(e, DimExpr):
                if run:
                    pieces.append(self.const(run, np.int64))
                    run = []
                pieces.append(self.size(e))
            else:
                run.append(int(e))
        if run:
            pieces.append(self.const(run, np.int64))
        return pieces[0] if len(pieces) == 1 else self.node("Concat", pieces, axis=0)

    def scalar(self, entry) -> str:
        """A 0-d int64 (an int or a DimExpr): a Range bound, a Gather index."""
        if not isinstance(entry, DimExpr):
            return self.const(int(entry), np.int64)
        if ("scalar", entry) not in self._cache:
            self._cache["scalar", entry] = self._global(
                lambda: self.node("Squeeze", [self.size(entry), self.ints([0])]),
                f"shape/{entry}")
        return self._cache["scalar", entry]

    # -- the model ----------------------------------------------------------------------------

    def model(self, inputs: list, outputs: list, producer: str) -> onnx.ModelProto:
        """The ModelProto; ``inputs``/``outputs`` are ValueInfoProtos of the graph's ends."""
        graph = helper.make_graph(self.nodes, "tinygrad_lite", inputs, outputs,
                                  initializer=self.initializers)
        opset = helper.make_opsetid("", self.opset)
        model = helper.make_model(graph, opset_imports=[opset], producer_name=producer,
                                  ir_version=helper.find_min_ir_version_for([opset]))
        return model


def value_info(name: str, dtype, shape) -> onnx.ValueInfoProto:
    """A graph input/output: each axis an int, a dimension name, or None (unknown)."""
    return helper.make_tensor_value_info(name, onnx_type(dtype), list(shape))
