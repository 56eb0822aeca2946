"""See the graph your code built: DOT text, an SVG/PNG picture, or one command for a small GPT.

    from tinygrad_lite import viz
    loss.backward(retain_graph=True)          # keep the graph (and its values) to look at
    viz.draw(loss, "graph.svg", params=dict(model.named_parameters()))
    print(viz.to_dot(loss))                   # the same graph as Graphviz DOT text

    python -m tinygrad_lite.viz --gpt graph.svg   # a small GPT: its graph and its backward table

The picture has two kinds of nodes. Boxes are tensors (shape, dtype, and the values and
gradients when they are small); parameters are yellow and carry their names, constants (data
that needs no gradient) are grey. Ellipses are ops, named by their ``Function`` class; hovering
over one in an SVG shows its derivative (the op's docstring). Edges run input -> op -> output,
the direction of the forward pass; ``backward`` walks them the other way.

Node ids come from the topological order (``autograd.topological_order``), so the same code
gives the same DOT text every run. ``draw`` uses Graphviz's ``dot`` program when it is
installed, else a layered layout drawn with matplotlib (``viz/layout.py``), so a plain
``pip install`` is enough.

After a ``backward()`` without ``retain_graph=True`` the nodes that saved values have freed
them (and with them their links to their inputs): such a node is drawn with "(freed)" and the
graph stops there. Call ``backward(retain_graph=True)`` or draw before ``backward``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

import numpy as np

from ..autograd import topological_order
from ..tensor import Tensor

COLORS = {"op": "lightblue", "tensor": "white", "param": "lightyellow", "leaf": "white",
          "const": "lightgrey", "root": "palegreen"}


@dataclass
class Graph:
    """What to draw: nodes in a topological order (inputs first) and input -> output edges."""
    nodes: list = field(default_factory=list)   # GraphNode, in topological order
    edges: list = field(default_factory=list)   # (from id, to id)


@dataclass
class GraphNode:
    id: str          # "t3" (tensor 3 of the topological order), "op3" (the op that made it), "c0"
    kind: str        # "op", "tensor", "param", "leaf", "const" or "root"
    label: str       # the text in the box, lines separated by "\n"
    tooltip: str = ""
    module: tuple = ()  # ("blocks", "0", "attn"): the module cluster it belongs in, () for none


# --------------------------------------------------------------------------------------------
# From tensors to a Graph
# --------------------------------------------------------------------------------------------

def _values_line(name: str, array: np.ndarray, max_values: int) -> list:
    """["data [0.1, 0.2]"] for a small array, [] for a large one."""
    if array is None or array.size > max_values:
        return []
    text = np.array2string(np.asarray(array), precision=4, separator=", ", suppress_small=True)
    return [f"{name} {' '.join(text.split())}"]


def _tensor_label(t: Tensor, title: str, max_values: int) -> str:
    lines = [title] if title else []
    lines.append(f"{tuple(t.shape)} {t.dtype}")
    lines += _values_line("data", t.data, max_values)
    lines += _values_line("grad", None if t.grad is None else t.grad.data, max_values)
    return "\n".join(lines)


def derivative_doc(function) -> str:
    """The op's docstring up to its first blank line: its formula and derivative."""
    doc = (type(function).__doc__ or "").strip()
    return " ".join(line.strip() for line in doc.split("\n\n")[0].splitlines())


def _common_prefix(paths: list) -> tuple:
    if not paths:
        return ()
    prefix = paths[0]
    for path in paths[1:]:
        n = 0
        while n < min(len(prefix), len(path)) and prefix[n] == path[n]:
            n += 1
        prefix = prefix[:n]
    return prefix


def _as_roots(root) -> list:
    roots = list(root) if isinstance(root, (list, tuple)) else [root]
    for r in roots:
        if not isinstance(r, Tensor):
            raise TypeError(f"viz: root must be a Tensor or a list of Tensors, got "
                            f"{type(r).__name__}")
    return roots


def build_graph(root, params=None, cluster_modules=False, max_values: int = 8) -> Graph:
    """The graph behind ``root`` (a tensor or a list of them) as nodes and edges.

    ``params`` maps names to parameters (``dict(model.named_parameters())``). With
    ``cluster_modules`` each parameter sits in its module ("blocks.0.attn.c_attn.weight" in
    blocks > 0 > attn > c_attn), cut to that many levels when it is an int. An op that uses
    parameters goes to their (common) module, any other op to the common module of its inputs,
    so the ops of an attention layer gather with its weights; what joins two modules (the
    residual additions of a Transformer) stays outside.
    """
    roots = _as_roots(root)
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        raise TypeError(f"viz: params must be a dict of name -> parameter (e.g. "
                        f"dict(model.named_parameters())), got {type(params).__name__}")
    if not isinstance(max_values, int) or max_values < 0:
        raise ValueError(f"viz: max_values must be an integer >= 0, got {max_values!r}")
    if not (isinstance(cluster_modules, bool) or
            isinstance(cluster_modules, int) and cluster_modules >= 1):
        raise ValueError(f"viz: cluster_modules must be True/False or a depth >= 1, got "
                         f"{cluster_modules!r}")
    depth = None if cluster_modules is True else int(cluster_modules)
    name_of = {id(p): name for name, p in params.items()}
    root_ids = {id(r) for r in roots}

    order = topological_order(*roots)
    index = {id(t): i for i, t in enumerate(order)}
    module_of = {}   # id(tensor) -> module path of the tensor
    const_ids = {}   # id(constant tensor) -> its node id
    graph = Graph()
    for i, t in enumerate(order):
        name = name_of.get(id(t))
        module = ()
        node = t._ctx
        if cluster_modules and name is not None:
            module = tuple(name.split(".")[:-1])[:depth]
        if node is not None:
            module = _add_op(graph, node, i, index, name_of, module_of, const_ids,
                             cluster_modules, max_values)
        module_of[id(t)] = module
        kind = ("root" if id(t) in root_ids else "param" if name is not None
                else "tensor" if node is not None else "leaf")
        graph.nodes.append(GraphNode(f"t{i}", kind, _tensor_label(t, name or "", max_values),
                                     module=module))
        if node is not None:
            graph.edges.append((f"op{i}", f"t{i}"))
    return graph


def _add_op(graph, node, i, index, name_of, module_of, const_ids, cluster_modules,
            max_values) -> tuple:
    """Add the op node of tensor i, its constant inputs and its input edges; return its module."""
    inputs = [] if node.freed else list(node.inputs)
    input_modules, param_modules = [], []
    for t in inputs:
        j = index.get(id(t))
        if j is None:  # needs no gradient: a constant (data, targets, a mask)
            if id(t) not in const_ids:
                const_ids[id(t)] = f"c{len(const_ids)}"
                graph.nodes.append(GraphNode(const_ids[id(t)], "const",
                                             _tensor_label(t, "const", max_values)))
            graph.edges.append((const_ids[id(t)], f"op{i}"))
            continue
        graph.edges.append((f"t{j}", f"op{i}"))
        if id(t) in name_of:
            param_modules.append(module_of[id(t)])
        elif t._ctx is not None:  # a computed input; a user's leaf tensor belongs nowhere
            input_modules.append(module_of[id(t)])
    module = _common_prefix(param_modules or input_modules) if cluster_modules else ()
    label = type(node).__name__ + (" (freed)" if node.freed else "")
    tooltip = derivative_doc(node)
    if getattr(node, "traced_at", ""):
        tooltip += f"  [forward ran at {node.traced_at}]"
    graph.nodes.append(GraphNode(f"op{i}", "op", label, tooltip, module))
    return module


# --------------------------------------------------------------------------------------------
# DOT text
# --------------------------------------------------------------------------------------------

def _quote(text: str) -> str:
    """A DOT string literal: backslashes and quotes escaped, newlines as DOT's centred \\n."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _node_line(n: GraphNode) -> str:
    shape = "ellipse" if n.kind == "op" else "box"
    style = "dashed,filled" if n.kind == "const" else "filled"
    attrs = f"label={_quote(n.label)}, shape={shape}, style={_quote(style)}, " \
            f"fillcolor={COLORS[n.kind]}"
    if n.tooltip:
        attrs += f", tooltip={_quote(n.tooltip)}"
    return f"{n.id} [{attrs}];"


def graph_to_dot(graph: Graph) -> str:
    """DOT text of a Graph, with one nested ``subgraph cluster_N`` per module."""
    by_module = {}
    for n in graph.nodes:
        by_module.setdefault(n.module, []).append(n)
    # every prefix of a module path is a cluster too (blocks > blocks.0 > blocks.0.attn)
    modules = sorted({m[:k] for m in by_module for k in range(1, len(m) + 1)})
    cluster_id = {m: k for k, m in enumerate(modules)}
    children = {}
    for m in modules:
        children.setdefault(m[:-1], []).append(m)

    lines = ["digraph tinygrad_lite {",
             '  graph [rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.15, ranksep=0.3];',
             '  node [fontname="Helvetica", fontsize=9, height=0.3];',
             '  edge [arrowsize=0.6];']

    def emit(module: tuple, indent: str) -> None:
        for n in by_module.get(module, []):
            lines.append(indent + _node_line(n))
        for child in children.get(module, []):
            lines.append(f"{indent}subgraph cluster_{cluster_id[child]} {{")
            lines.append(f"{indent}  label={_quote('.'.join(child))}; style=rounded; "
                         f"color=grey60;")
            emit(child, indent + "  ")
            lines.append(indent + "}")

    emit((), "  ")
    lines += [f"  {a} -> {b};" for a, b in graph.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_dot(root, params=None, cluster_modules=False, max_values: int = 8) -> str:
    """Graphviz DOT text of the graph that computed ``root`` (a tensor or a list of them).

    ``params``: ``dict(model.named_parameters())`` to label parameters by name;
    ``cluster_modules``: True (or a depth) to group nodes by module; ``max_values``: tensors
    with at most this many elements show their values and gradients.
    """
    return graph_to_dot(build_graph(root, params, cluster_modules, max_values))


# --------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------

FORMATS = ("svg", "png", "pdf")


def draw(root, path, params=None, cluster_modules=False, max_values: int = 8,
         engine: str = "auto") -> str:
    """Draw the graph of ``root`` to ``path`` (.svg, .png or .pdf) and return the path.

    ``engine``: "dot" (Graphviz, when installed), "matplotlib" (layered layout, no system
    package) or "auto" (dot if it is on PATH, else matplotlib).
    """
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"draw: path {path!r} must end in one of "
                         f"{', '.join('.' + f for f in FORMATS)}")
    if engine not in ("auto", "dot", "matplotlib"):
        raise ValueError(f"draw: engine must be 'auto', 'dot' or 'matplotlib', got {engine!r}")
    graph = build_graph(root, params, cluster_modules, max_values)
    if engine == "auto":
        engine = "dot" if shutil.which("dot") else "matplotlib"
    if engine == "dot":
        _draw_with_dot(graph, path, fmt)
    else:
        from .layout import draw_with_matplotlib  # imports matplotlib, only when used
        draw_with_matplotlib(graph, path, fmt)
    return path


def _draw_with_dot(graph: Graph, path: str, fmt: str) -> None:
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("draw: engine='dot' needs Graphviz's `dot` program, which is not on "
                           "PATH. Install Graphviz (apt-get install graphviz, brew install "
                           "graphviz or conda install graphviz), or use engine='matplotlib'.")
    done = subprocess.run([dot, f"-T{fmt}", "-o", path], input=graph_to_dot(graph).encode(),
                          capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"draw: Graphviz's dot failed: {done.stderr.decode().strip()}")


# --------------------------------------------------------------------------------------------
# One command: python -m tinygrad_lite.viz --gpt graph.svg
# --------------------------------------------------------------------------------------------

def draw_gpt(path: str = "gpt_graph.svg", num_blocks: int = 2, d_model: int = 16,
             num_heads: int = 2, seq_len: int = 8, vocab_size: int = 11, engine: str = "auto",
             seed: int = 0):
    """Build a small GPT, run its forward on random tokens, draw the graph (clustered by
    module) to ``path``, run its backward and return the trace of that backward.
    ``print(draw_gpt().table())`` shows the walk node by node."""
    from .. import manual_seed
    from ..models.gpt import GPT, GPTConfig
    from ..trace import trace_backward, trace_forward

    manual_seed(seed)
    config = GPTConfig(vocab_size=vocab_size, context_length=seq_len, d_model=d_model,
                       num_blocks=num_blocks, num_heads=num_heads, dropout=0.0)
    model = GPT(config)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, vocab_size, size=(2, seq_len))      # (B, T) token ids
    targets = rng.integers(0, vocab_size, size=(2, seq_len))  # (B, T) next-token ids
    with trace_forward():  # each op node's tooltip then says which line ran it
        _, loss = model(idx, targets)
    # draw before backward: a backward without retain_graph frees the saved values (the
    # table's last column shows how many bytes), and with them the links to the inputs
    draw(loss, path, params=dict(model.named_parameters()), cluster_modules=True, engine=engine)
    with trace_backward() as walk:
        loss.backward()
    return walk
