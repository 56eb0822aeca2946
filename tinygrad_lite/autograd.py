"""Reverse-mode automatic differentiation: the graph, the walk, and the grad-mode switches.

How it works, in three sentences. Every differentiable operation is a small ``Function``
subclass; when it runs on tensors that require grad, ``Function.apply`` keeps the node (with
references to its input tensors) on the output tensor's ``_ctx``. ``backward()`` lists the
tensors reachable from the loss in ``topological_order`` and walks that list in reverse, calling
each node's ``backward`` with the gradient of its output and handing the results to its inputs.
The backward formulas are written with Tensor operations, so with ``create_graph=True`` the
gradient computation is itself recorded and can be differentiated again.

Memory design: a node references its inputs, never its output (the output is handed to
``backward`` by the walk), so the graph has no reference cycles and is freed by reference
counting the moment the last tensor using it goes away -- the cyclic garbage collector never has
to find it.
"""

from __future__ import annotations

import functools
import traceback

import numpy as np

from .checks import check_flag

# --------------------------------------------------------------------------------------------
# Grad mode and anomaly mode (module-level switches, read by Function.apply on every op)
# --------------------------------------------------------------------------------------------

_grad_enabled = True
_anomaly_enabled = False
_anomaly_where = ""  # during a backward in anomaly mode: which node's backward is running


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad are being recorded."""
    return _grad_enabled


class set_grad_enabled:
    """Turn graph recording on or off for a ``with`` block (or a decorated function)."""

    def __init__(self, mode: bool):
        if not isinstance(mode, (bool, np.bool_)):  # "no" would be truthy: recording on
            raise TypeError(f"set_grad_enabled: mode must be a bool, got {mode!r}")
        self.mode = bool(mode)
        self.previous = None

    def __enter__(self):
        global _grad_enabled
        self.previous = _grad_enabled
        _grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.previous
        return False

    def __call__(self, fn):
        """Use as a decorator: the whole function runs in this mode."""
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


class no_grad(set_grad_enabled):
    """Context manager / decorator: run without recording a graph (evaluation, parameter updates)."""

    def __init__(self):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Context manager / decorator: record a graph even inside ``no_grad``."""

    def __init__(self):
        super().__init__(True)


class detect_anomaly:
    """Context manager: check every forward output and every gradient for NaN/Inf.

    The first op that produces one raises a RuntimeError naming it (and, for a backward, where
    its forward ran). Slow -- for debugging only.
    """

    def __enter__(self):
        global _anomaly_enabled
        self.previous = _anomaly_enabled
        _anomaly_enabled = True
        return self

    def __exit__(self, *exc):
        global _anomaly_enabled
        _anomaly_enabled = self.previous
        return False


def _check_finite(array: np.ndarray, what: str) -> None:
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "Inf"
        raise RuntimeError(f"detect_anomaly: {bad} (in an array of shape {array.shape}, dtype "
                           f"{array.dtype}) produced by {what}")


@functools.cache
def _tensor_class():
    """The Tensor class, for isinstance checks and conversions. The dependency runs tensor.py ->
    autograd.py (Tensor.backward calls run_backward), so this module imports tensor.py only here,
    on first use, never while it loads. The hot paths need no import: they make new tensors with
    ``_make`` of a tensor they already hold (an op's input, a gradient)."""
    from .tensor import Tensor
    return Tensor


# --------------------------------------------------------------------------------------------
# Silent NaN/Inf: PyTorch computes log(0) = -inf and 0 * inf = NaN without a word, so NumPy's
# RuntimeWarnings ("divide by zero", "invalid value") must not reach the user either.
# --------------------------------------------------------------------------------------------

try:  # NumPy >= 2 keeps its error state in a context variable: setting it to one prebuilt
    # value costs ~0.15 us, np.errstate(all="ignore") ~1 us (it rebuilds the state every time),
    # and this runs for every op.
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj
    _IGNORE_ALL = _make_extobj(all="ignore")

    def quiet_begin():
        """Silence NumPy's floating-point warnings until ``quiet_end(token)``."""
        return _extobj_contextvar.set(_IGNORE_ALL)

    def quiet_end(token) -> None:
        _extobj_contextvar.reset(token)
except ImportError:  # older NumPy: the public (slower) way
    def quiet_begin():
        """Silence NumPy's floating-point warnings until ``quiet_end(token)``."""
        return np.seterr(all="ignore")

    def quiet_end(token) -> None:
        np.seterr(**token)


# --------------------------------------------------------------------------------------------
# Function: one node of the graph
# --------------------------------------------------------------------------------------------

class Function:
    """Base class of every differentiable operation.

    A subclass writes ``forward(self, *arrays)`` on NumPy arrays (returning a NumPy array) and
    ``backward(self, grad, out)`` on Tensors: ``grad`` is dL/d(out) and it returns one gradient
    per input (``None`` for inputs that get none). The input tensors are available as
    ``self.inputs`` and the output tensor as ``out``; options passed to ``apply`` as keyword
    arguments (``Sum.apply(x, axis=0, keepdims=False)``) become attributes (``self.axis``) before
    ``forward`` runs. An option may not reuse the name of anything the class defines or the
    engine keeps on a node (``inputs``, ``freed``, ``forward``, ...): ``apply`` raises a
    TypeError instead of letting it overwrite engine state.

    **One rule for backward.** ``backward`` is the single readable statement of the op's
    derivative, written in Tensor operations, so that under ``create_graph=True`` the walk records
    it and it can be differentiated again. An op that needs speed may also define
    ``backward_arrays(self, grad, out)``: the same first derivative on NumPy arrays (``grad``
    and ``out`` are the arrays of dL/d(out) and of the output; it returns one array, or one
    array or ``None`` per input). The walk calls it instead of ``backward`` whenever the
    backward pass is not being recorded; ``tests/test_backward_arrays.py`` checks it against
    ``backward`` for every op that has one. Only the ops in ``ops/nn.py`` (the fused C kernels
    and LayerNorm/Linear) need it.

    Two class flags tell the engine what ``backward`` reads, so that an in-place change to
    those tensors between forward and backward is caught (see ``Tensor._version``):
    ``uses_inputs`` (default True) and ``uses_output`` (default False).

    After a backward pass without ``retain_graph`` the node frees what it saved, as in
    PyTorch. The rule (``saves_values``): a node saved values if its backward reads its inputs'
    or its output's values (``uses_inputs`` / ``uses_output``), or if it keeps an array (or a
    Tensor) among its attributes -- one that ``forward`` stored (LayerNorm's ``xhat``) or an
    option (an index array). Such a node is freed, and a second backward through it raises
    "Trying to backward through the graph a second time". A node that saved nothing (Add, Sum,
    Reshape, a slice, ...) needs only its inputs as graph edges and its shapes, so it is kept
    and a second backward through it works and accumulates again, as in PyTorch. Python
    scalars and shapes are not counted as saved values (they cost nothing to keep).
    """

    uses_inputs = True
    uses_output = False
    is_view = False  # the output shares memory (and so its version counter) with input 0
    freed = False    # set by _release() once backward has run without retain_graph
    backward_arrays = None  # optional fast first-order backward on arrays (see above)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # The names an option may not take: everything the class defines, and what the engine
        # puts on a node. Computed once per op class, so apply checks them in one set operation.
        cls._reserved_names = frozenset(dir(cls)) | _ENGINE_ATTRIBUTES

    def __init__(self, **options):
        if options and not self._reserved_names.isdisjoint(options):
            _refuse_options(type(self), options)
        self.__dict__.update(options)

    @classmethod
    def apply(cls, *inputs, **options):
        """Run forward on the inputs' arrays and, if any input requires grad, record the node.

        This runs for every operation, so it is written for speed: no per-call imports, and
        the bookkeeping is skipped entirely when nothing needs a gradient.
        """
        node = object.__new__(cls)
        if options:
            if not cls._reserved_names.isdisjoint(options):
                _refuse_options(cls, options)
            node.__dict__ = options  # the options (axis, shape, ...) become attributes
        quiet = quiet_begin()  # NaN/Inf results without NumPy warnings, as in PyTorch
        try:
            if len(inputs) == 1:  # the common arities without building a list
                out_data = node.forward(inputs[0].data)
            elif len(inputs) == 2:
                out_data = node.forward(inputs[0].data, inputs[1].data)
            else:
                out_data = node.forward(*[t.data for t in inputs])
        except ValueError as e:
            if len(inputs) > 1 and "broadcast" in str(e):  # NumPy's shape mismatch, renamed
                shapes = " and ".join(str(t.shape) for t in inputs)
                raise ValueError(f"{cls.__name__}: shapes {shapes} cannot be broadcast "
                                 f"together") from None
            raise
        finally:
            quiet_end(quiet)
        if _anomaly_enabled:
            _check_finite(out_data, f"the forward of {cls.__name__}" + _anomaly_where)
        out = inputs[0]._make(out_data)  # a new Tensor (of the inputs' class)
        if node.is_view:  # a class flag, or set by forward when only some calls give a view
            out._version = inputs[0]._version
        if not _grad_enabled or out_data.dtype.kind != "f":  # only float results carry grads
            return out
        for t in inputs:
            if t._requires_grad:
                break
        else:
            return out
        out._requires_grad = True
        out._ctx = node
        node.inputs = inputs
        if cls.uses_inputs:  # remember versions, to catch in-place changes before backward
            node.saved_versions = [t._version[0] for t in inputs]
        if _anomaly_enabled:
            node.forward_stack = "".join(traceback.format_stack()[:-2][-6:])
        return out

    def forward(self, *arrays):  # pragma: no cover - every subclass overrides it
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad, out):  # pragma: no cover - every subclass overrides it
        raise NotImplementedError(f"{type(self).__name__} must define backward")

    # -- bookkeeping used by the walk --------------------------------------------------------

    def _check_versions(self, out) -> None:
        """Raise if a tensor this node's backward reads was modified in place after forward."""
        name = type(self).__name__
        if self.uses_inputs:
            for i, (t, v) in enumerate(zip(self.inputs, self.saved_versions)):
                if t._version[0] != v:
                    raise RuntimeError(
                        f"{name}.backward needs input {i} (shape {t.shape}), but it was modified "
                        f"by an in-place operation after the forward pass (version {v} -> "
                        f"{t._version[0]}). Use an out-of-place op (x = x + y) or .clone().")
        if self.uses_output and out._version[0] != 0:
            raise RuntimeError(
                f"{name}.backward needs its output (shape {out.shape}), but it was modified by "
                f"an in-place operation after the forward pass. Use an out-of-place op or .clone().")

    def saves_values(self) -> bool:
        """True if backward reads values that _release frees (the rule in the class docstring)."""
        if self.uses_inputs or self.uses_output:
            return True
        return any(_holds_array(value) for name, value in self.__dict__.items()
                   if name not in _ENGINE_ATTRIBUTES)

    def _release(self) -> None:
        """After a backward pass: free the inputs and saved arrays of a node that saved values.
        A node that saved nothing keeps its inputs (the graph's edges) for another backward."""
        if self.saves_values():
            self.__dict__.clear()
            self.freed = True


# What Function.apply itself puts on a node: not values the op saved.
_ENGINE_ATTRIBUTES = frozenset({"inputs", "saved_versions", "forward_stack"})
Function._reserved_names = frozenset(dir(Function)) | _ENGINE_ATTRIBUTES


def _refuse_options(cls, options) -> None:
    clash = sorted(cls._reserved_names.intersection(options))
    raise TypeError(f"{cls.__name__}.apply: option name(s) {', '.join(map(repr, clash))} would "
                    f"overwrite {'an attribute' if len(clash) == 1 else 'attributes'} of the "
                    f"node that the engine or the op itself uses; rename the option")


def _holds_array(value) -> bool:
    """True for an array or Tensor, or a tuple/list/dict containing one (e.g. an index)."""
    if isinstance(value, (np.ndarray, _tensor_class())):
        return True
    if isinstance(value, (tuple, list)):
        return any(_holds_array(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_array(v) for v in value.values())
    return False


# --------------------------------------------------------------------------------------------
# The graph walk
# --------------------------------------------------------------------------------------------

def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, so it has ``shape``.

    If x of shape (3, 1) was broadcast to (2, 3, 4) in the forward pass, each element of x
    was used 2*4 times, so its gradient is the sum over those uses: sum over axis 0 (added)
    and axis 2 (stretched from 1), keeping the size-1 axis.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    out = grad.sum(axis=axes, keepdims=True) if axes else grad
    return out.reshape(shape)


def topological_order(*roots) -> list:
    """Every tensor that requires grad and is reachable from ``roots``, inputs before outputs.

    Iterative depth-first search with an explicit stack (a recursive one hits Python's recursion
    limit on a chain of a few thousand ops). A tensor is appended only after all of its inputs,
    so walking the list backwards visits each tensor after every tensor that consumed it.
    """
    order = []
    visited = set()
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        node = tensor._ctx
        if node is not None and not node.freed:
            for parent in node.inputs:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


# Set by tinygrad_lite.trace while a trace_backward() block records the walk, else None. The walk
# checks it twice per node, so tracing costs nothing measurable when it is off.
_tracer = None


def run_backward(roots, root_grads, retain_graph=False, create_graph=False, inputs=None):
    """The engine behind ``Tensor.backward`` and ``grad``.

    Walks the graph from ``roots`` (each seeded with its gradient). If ``inputs`` is None the
    gradients are accumulated into ``.grad`` of the leaves (and of tensors that called
    ``retain_grad``); otherwise the gradients of ``inputs`` are returned and ``.grad`` is left
    alone. Hooks registered with ``register_hook`` run on each tensor's gradient as it completes.
    """
    order = topological_order(*roots)
    grads = {}
    for r, g in zip(roots, root_grads):
        grads[id(r)] = grads[id(r)] + g if id(r) in grads else g
    wanted = None  # id(tensor) -> its positions in inputs (a tensor may be listed twice)
    if inputs is not None:
        wanted = {}
        for i, t in enumerate(inputs):
            wanted.setdefault(id(t), []).append(i)
    results = [None] * (0 if inputs is None else len(inputs))

    # errstate: the backward formulas meet the forward's NaN/Inf (0 * inf in Mul's backward)
    with set_grad_enabled(create_graph), np.errstate(all="ignore"):
        for tensor in reversed(order):
            grad = grads.pop(id(tensor), None)
            if grad is None:
                continue
            if tensor._hooks:
                grad = _run_hooks(tensor, grad)
            node = tensor._ctx
            if wanted is not None:
                for i in wanted.get(id(tensor), ()):
                    results[i] = grad
            elif node is None or tensor._retains_grad:
                _accumulate(tensor, grad, create_graph)
            if node is None:
                continue
            if node.freed:
                raise RuntimeError(
                    f"Trying to backward through the graph a second time (through "
                    f"{type(node).__name__}): its saved values were freed after the first "
                    f"backward. Pass retain_graph=True to the first backward() if you need to "
                    f"backward twice.")
            if _tracer is not None:
                _tracer.node_started(tensor, node, grad)
            if node.uses_inputs or node.uses_output:
                node._check_versions(tensor)
            if _anomaly_enabled:
                input_grads = _backward_with_anomaly_context(node, grad, tensor, create_graph)
            elif create_graph or node.backward_arrays is None:
                input_grads = node.backward(grad, tensor)
            else:  # not recorded: the op's fast first-order method
                input_grads = _backward_on_arrays(node, grad, tensor)
            if type(input_grads) is not tuple:
                input_grads = (input_grads,)
            for parent, g in zip(node.inputs, input_grads):
                if g is None or not parent._requires_grad:
                    continue
                if g.data.shape != parent.data.shape:
                    raise RuntimeError(
                        f"internal error: {type(node).__name__}.backward returned a gradient of "
                        f"shape {g.shape} for an input of shape {parent.shape}")
                if g.data.dtype is not parent.data.dtype and g.data.dtype != parent.data.dtype:
                    # e.g. a float32 weight used in float64 math: its gradient is float32
                    g = g.to(parent.data.dtype)
                if _anomaly_enabled:
                    _check_finite(g.data, f"the backward of {type(node).__name__} (its forward "
                                          f"ran at:\n{getattr(node, 'forward_stack', '?')})")
                key = id(parent)
                grads[key] = grads[key] + g if key in grads else g
            if not retain_graph:
                node._release()
            if _tracer is not None:
                _tracer.node_finished(input_grads)
    return results


def _backward_on_arrays(node, grad, out):
    """Call ``node.backward_arrays`` on the arrays and wrap what it returns as gradient tensors."""
    arrays = node.backward_arrays(grad.data, out.data)
    if type(arrays) is not tuple:
        return grad._make(arrays)
    return tuple(None if a is None else grad._make(a) for a in arrays)


def _backward_with_anomaly_context(node, grad, out, create_graph):
    """Run node's backward so that a NaN/Inf inside it is reported as coming from this node."""
    global _anomaly_where
    _anomaly_where = (f", inside the backward of {type(node).__name__} (whose forward ran at:\n"
                      f"{getattr(node, 'forward_stack', '?')})")
    try:
        if create_graph or node.backward_arrays is None:
            return node.backward(grad, out)
        return _backward_on_arrays(node, grad, out)
    finally:
        _anomaly_where = ""


def _run_hooks(tensor, grad):
    """Hooks see a tensor's finished gradient; one that returns a value replaces it.

    As in PyTorch, the replacement must keep the gradient's shape and dtype: a hook that
    changes either raises (a wrong-shaped ``.grad`` would otherwise surface much later)."""
    for hook in list(tensor._hooks.values()):
        replaced = hook(grad)
        if replaced is None:
            continue
        Tensor = _tensor_class()
        replaced = replaced if isinstance(replaced, Tensor) else Tensor(replaced)
        name = getattr(hook, "__qualname__", None) or repr(hook)
        if replaced.shape != grad.shape:
            raise RuntimeError(f"hook {name!r} has changed the size of value: the gradient has "
                               f"shape {grad.shape}, the hook returned shape {replaced.shape}")
        if replaced.dtype != grad.dtype:
            raise RuntimeError(f"hook {name!r} has changed the type of value: the gradient has "
                               f"dtype {grad.dtype}, the hook returned dtype {replaced.dtype} "
                               f"(return grad.to(grad.dtype) or keep the arithmetic in its "
                               f"dtype)")
        grad = replaced
    return grad


def _accumulate(tensor, grad, create_graph):
    """Add ``grad`` into ``tensor.grad`` (a fresh array, never shared with another tensor)."""
    if not create_graph:
        grad = grad._make(np.array(grad.data, copy=True)) if tensor.grad is None else grad.detach()
    elif tensor.grad is None:
        grad = grad.clone()  # recorded copy: one gradient tensor may reach several leaves
    if tensor.grad is None:
        tensor.grad = grad
    elif create_graph:
        tensor.grad = tensor.grad + grad
    else:
        tensor.grad = grad._make(tensor.grad.data + grad.data)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned instead of stored in ``.grad``.

    Like ``torch.autograd.grad``: it always returns a tuple, one gradient per input, even for a
    single input tensor (``(gx,) = grad(y, x)``). With ``create_graph=True`` the returned
    gradients are themselves part of a graph, so they can be differentiated again
    (Hessian-vector products, gradient penalties).
    """
    outputs = _tensor_list(outputs, "outputs")
    inputs = _tensor_list(inputs, "inputs")
    create_graph = check_flag("grad", "create_graph", create_graph)
    allow_unused = check_flag("grad", "allow_unused", allow_unused)
    if retain_graph is not None:
        retain_graph = check_flag("grad", "retain_graph", retain_graph)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, _tensor_class()):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad: got {len(outputs)} outputs but {len(grad_outputs)} "
                           f"grad_outputs; pass one gradient (or None) per output")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) does not require grad")
    seeds = [_seed_gradient(o, g, "grad") for o, g in zip(outputs, grad_outputs)]
    if retain_graph is None:
        retain_graph = create_graph
    results = run_backward(outputs, seeds, retain_graph, create_graph, inputs=inputs)
    for i, (t, g) in enumerate(zip(inputs, results)):
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: input {i} (shape {t.shape}) was not used to compute the "
                               f"outputs; pass allow_unused=True to get None for it")
    return tuple(results)


def _tensor_list(tensors, name: str) -> list:
    """grad()'s outputs / inputs: one Tensor or a sequence of them, as a list."""
    Tensor = _tensor_class()
    if isinstance(tensors, Tensor):
        return [tensors]
    if isinstance(tensors, (list, tuple)) and all(isinstance(t, Tensor) for t in tensors):
        return list(tensors)
    raise TypeError(f"grad: {name} must be a Tensor or a list/tuple of Tensors, got "
                    f"{type(tensors).__name__}")


def _seed_gradient(output, gradient, op: str):
    """The starting gradient dL/d(output): 1 for a scalar, else it must be given. ``op`` (backward
    or grad) is named in the errors."""
    if not output.requires_grad:
        raise RuntimeError(f"{op}: element of outputs (shape {output.shape}) does not require "
                           f"grad and has no graph: nothing to differentiate")
    if gradient is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"backward() needs a scalar output to start from, but this tensor has shape "
                f"{output.shape}. Reduce it first (e.g. loss.sum() or loss.mean()) or pass "
                f"gradient=<tensor of the same shape>.")
        return output._make(np.ones(output.shape, dtype=output.dtype))
    Tensor = _tensor_class()
    if not isinstance(gradient, Tensor):
        try:
            gradient = Tensor(np.asarray(gradient, dtype=output.dtype))
        except (TypeError, ValueError):
            raise TypeError(f"backward: gradient must be a Tensor or an array of numbers of the "
                            f"output's shape {output.shape}, got {type(gradient).__name__} "
                            f"{gradient!r:.60}") from None
    if gradient.shape != output.shape:
        raise RuntimeError(f"Mismatch in shape: gradient has a shape of {gradient.shape} and "
                           f"the output has a shape of {output.shape}; backward(gradient=...) "
                           f"needs d(loss)/d(output), of the output's shape")
    return gradient.to(output.dtype) if gradient.dtype != output.dtype else gradient

