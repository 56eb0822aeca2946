"""Watch the engine work: which op made each tensor (forward) and the backward walk, node by node.

    from tinygrad_lite.trace import trace_backward, trace_forward

    with trace_forward() as fwd:          # record every op and the line of code that ran it
        loss = ((x @ w).tanh() ** 2).mean()
    with trace_backward() as bwd:         # record the walk that backward() does
        loss.backward()
    print(fwd.table())
    print(bwd.table())
    bwd.rows[0].op, bwd.rows[0].grad_norm, bwd.rows[0].input_grads   # the same, as data

Each backward row is one node (Function) in the order ``run_backward`` visits it: the op, the
shape of its output, the norm of the gradient arriving at that output, the gradient it hands to
each input (shape and norm; ``None`` for an input that gets none), the time the node took, and
how many bytes of saved values it let go of (a node frees them after backward unless
``retain_graph=True``; see ``Function.saves_values``). Inside a ``trace_forward`` block as well,
each backward row also says where that node's forward ran.

Tracing is off unless a block is open, and then costs nothing: ``trace_forward`` wraps
``Function.apply`` only for the duration of its block, and ``run_backward`` calls the backward
recorder through ``autograd._tracer``, which is ``None`` otherwise. Neither changes any result.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from . import autograd
from .autograd import Function

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# Files of the engine itself: a forward row names the first line outside them (e.g. an nn layer)
_ENGINE_FILES = tuple(os.path.join(_PACKAGE_DIR, name) for name in
                      ("autograd.py", "tensor.py", "tensor_base.py", "trace.py", "__init__.py",
                       "ops" + os.sep))


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------

@dataclass
class ForwardRow:
    """One op run inside a ``trace_forward`` block."""
    index: int                 # order in which the ops ran
    op: str                    # the Function class, e.g. "Mul"
    shape: tuple               # shape of the tensor it produced
    dtype: str
    input_shapes: list         # shape of each input tensor
    in_graph: bool             # True if the output was recorded for backward (requires grad)
    where: str                 # first line outside the engine: "model.py:12 in forward"
    user_line: str             # first line outside tinygrad_lite: the user's own code
    phase: str = "forward"     # "backward": run by a node's backward formula during a walk


@dataclass
class BackwardRow:
    """One node visited by ``run_backward`` inside a ``trace_backward`` block."""
    step: int                  # position in the walk (0 = the first node, next to the loss)
    op: str                    # the Function class whose backward ran
    shape: tuple               # shape of that node's output
    grad_norm: float           # ||dL/d(output)||, the gradient arriving from above
    input_grads: list          # per input: (shape, norm) of the gradient handed to it, or None
    seconds: float             # time the node took (version check, backward, bookkeeping);
                               # nan if its backward raised
    freed_bytes: int           # bytes of saved values the node released after its backward
    made_at: str = ""          # where its forward ran, if a trace_forward block recorded it
    depth: int = 0             # > 0 for a walk started inside another node's backward


def _norm(grad) -> float:
    """Euclidean norm of a gradient tensor, computed in float64."""
    return float(np.linalg.norm(np.asarray(grad.data, dtype=np.float64).ravel()))


def _array_bytes(value, seen: set) -> int:
    """Bytes of the arrays (and Tensors) in ``value``, each array counted once."""
    if isinstance(value, autograd._tensor_class()):
        value = value.data
    if isinstance(value, np.ndarray):
        if id(value) in seen:
            return 0
        seen.add(id(value))
        return value.nbytes
    if isinstance(value, (tuple, list)):
        return sum(_array_bytes(v, seen) for v in value)
    if isinstance(value, dict):
        return sum(_array_bytes(v, seen) for v in value.values())
    return 0


def saved_bytes(node: Function, out) -> int:
    """Bytes of the values a node keeps for its backward (the rule of ``Function.saves_values``):
    its inputs' values if backward reads them, its output's if it reads that, and any array it
    stored as an attribute."""
    seen = set()
    total = 0
    if node.uses_inputs:
        total += _array_bytes(list(node.inputs), seen)
    if node.uses_output:
        total += _array_bytes(out, seen)
    for name, value in node.__dict__.items():
        if name not in autograd._ENGINE_ATTRIBUTES:
            total += _array_bytes(value, seen)
    return total


def _format_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.1f} MiB"


def _format_shape(shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _format_table(header: list, lines: list) -> str:
    """Left-aligned text columns, as wide as their widest cell."""
    widths = [max(len(str(row[i])) for row in [header] + lines) for i in range(len(header))]

    def fmt(row):
        return "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in lines])


# --------------------------------------------------------------------------------------------
# The backward trace
# --------------------------------------------------------------------------------------------

class trace_backward:
    """Context manager: record every node ``run_backward`` visits inside the block.

    ``rows`` is the list of ``BackwardRow``; ``table()`` is the same as text. A block opened
    inside another one records on its own until it closes (then the outer one resumes).
    """

    def __init__(self):
        self.rows: list[BackwardRow] = []
        self._open = []  # nodes whose backward is running (a stack: walks can nest)
        self._previous = None

    def __enter__(self):
        self._previous = autograd._tracer
        autograd._tracer = self
        return self

    def __exit__(self, *exc):
        autograd._tracer = self._previous
        self._open.clear()  # a backward that raised never finished its node
        return False

    # -- called by run_backward ---------------------------------------------------------------

    def node_started(self, out, node, grad) -> None:
        """Before ``node.backward``: a row in visit order, what the node holds; then the clock."""
        row = BackwardRow(step=len(self.rows), op=type(node).__name__, shape=tuple(out.shape),
                          grad_norm=_norm(grad), input_grads=[], seconds=float("nan"),
                          freed_bytes=0, made_at=getattr(node, "traced_at", ""),
                          depth=len(self._open))
        self.rows.append(row)
        inputs = [(tuple(t.shape), t.requires_grad) for t in node.inputs]
        self._open.append((row, node, inputs, saved_bytes(node, out), time.perf_counter()))

    def node_finished(self, input_grads) -> None:
        """After the node's backward and release: stop the clock, then measure the gradients."""
        stop = time.perf_counter()
        row, node, inputs, saved, start = self._open.pop()
        row.seconds = stop - start
        row.freed_bytes = saved if node.freed else 0
        for (shape, requires_grad), g in zip(inputs, input_grads):
            row.input_grads.append((shape, _norm(g)) if g is not None and requires_grad else None)
        row.input_grads += [None] * (len(inputs) - len(row.input_grads))

    # -- reading it ---------------------------------------------------------------------------

    @property
    def total_seconds(self) -> float:
        return sum(r.seconds for r in self.rows if r.seconds == r.seconds)  # nan != nan

    def table(self) -> str:
        """The walk as text: one line per node, in the order the engine visited them."""
        header = ["step", "op", "out shape", "|grad in|", "grads to inputs (shape: norm)",
                  "time us", "freed"]
        show_where = any(r.made_at for r in self.rows)
        if show_where:
            header.append("forward ran at")
        lines = []
        for r in self.rows:
            handed = " | ".join("-" if h is None else f"{_format_shape(h[0])}: {h[1]:.4g}"
                                for h in r.input_grads)
            line = [r.step, "  " * r.depth + r.op, _format_shape(r.shape), f"{r.grad_norm:.4g}",
                    handed, f"{r.seconds * 1e6:.1f}", _format_bytes(r.freed_bytes)]
            lines.append(line + [r.made_at] if show_where else line)
        freed = sum(r.freed_bytes for r in self.rows)
        footer = (f"{len(self.rows)} nodes, {self.total_seconds * 1e3:.2f} ms in backward "
                  f"nodes, {_format_bytes(freed)} of saved values freed")
        return _format_table(header, lines) + "\n" + footer


# --------------------------------------------------------------------------------------------
# The forward trace
# --------------------------------------------------------------------------------------------

def _describe_frame(frame) -> str:
    code = frame.f_code
    path = code.co_filename
    if path.startswith(_PACKAGE_DIR):  # tinygrad_lite/nn/layers.py rather than a full path
        path = os.path.join("tinygrad_lite", os.path.relpath(path, _PACKAGE_DIR))
    else:
        try:
            relative = os.path.relpath(path)
            path = path if relative.startswith("..") else relative
        except ValueError:  # another drive on Windows
            pass
    return f"{path}:{frame.f_lineno} in {code.co_name}"


def _call_site(frame) -> tuple:
    """(where, user line, phase) of an op call, as text.

    ``where`` is the first frame outside the engine files (an nn layer, or the user's code);
    the user line is the first frame outside tinygrad_lite. An op called by a node's backward
    formula during a walk is in phase "backward", and its ``where`` is that backward method
    (or ``run_backward`` itself, which adds the gradients of a tensor used twice).
    """
    where = user = ""
    while frame is not None:
        code = frame.f_code
        if code is autograd.run_backward.__code__ or (  # the walk adding up two gradients
                code.co_name == "backward" and isinstance(frame.f_locals.get("self"), Function)):
            where = _describe_frame(frame)
            phase = "backward"
            break
        path = os.path.abspath(code.co_filename)
        if not where and not path.startswith(_ENGINE_FILES):
            where = _describe_frame(frame)
        if not user and not path.startswith(_PACKAGE_DIR):
            user = _describe_frame(frame)
        frame = frame.f_back
    else:
        phase = "forward"
    if phase == "backward":  # keep looking for the user's line (the backward() call)
        while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
                _PACKAGE_DIR):
            frame = frame.f_back
        user = _describe_frame(frame) if frame is not None else ""
    return where or user, user, phase


class trace_forward:
    """Context manager: record every op run inside the block, with the line of code that ran it.

    ``rows`` is the list of ``ForwardRow``; ``table()`` is the same as text. Each graph node
    made in the block also remembers its line (``node.traced_at``) so that a backward trace
    can show it.
    """

    def __init__(self):
        self.rows: list[ForwardRow] = []
        self._original_apply = None

    def __enter__(self):
        # Wrap Function.apply (every op goes through it) for the duration of the block.
        self._original_apply = Function.__dict__["apply"]
        original, rows = self._original_apply.__func__, self.rows

        def traced_apply(cls, *inputs, **options):
            out = original(cls, *inputs, **options)
            where, user, phase = _call_site(sys._getframe(1))
            rows.append(ForwardRow(
                index=len(rows), op=cls.__name__, shape=tuple(out.shape), dtype=str(out.dtype),
                input_shapes=[tuple(t.shape) for t in inputs], in_graph=out._ctx is not None,
                where=where, user_line=user, phase=phase))
            if out._ctx is not None:
                out._ctx.traced_at = where
            return out

        Function.apply = classmethod(traced_apply)
        return self

    def __exit__(self, *exc):
        Function.apply = self._original_apply
        return False

    def table(self) -> str:
        """One line per op: what it made and where. The user's own line is shown when the op
        ran inside the library (an nn layer, a loss)."""
        header = ["#", "op", "inputs", "out shape", "dtype", "graph", "phase", "ran at",
                  "called from"]
        lines = []
        for r in self.rows:
            inputs = " ".join(_format_shape(s) for s in r.input_shapes)
            user = "" if r.user_line == r.where else r.user_line
            lines.append([r.index, r.op, inputs, _format_shape(r.shape), r.dtype,
                          "yes" if r.in_graph else "no", r.phase, r.where, user])
        return _format_table(header, lines)
