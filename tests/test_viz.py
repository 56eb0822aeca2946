"""tinygrad_lite.viz: the DOT text is deterministic and says exactly what the graph holds, and
the pictures come out of a plain install (Graphviz's dot if present, else matplotlib)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygrad_lite as tg
import tinygrad_lite.nn as nn
from tinygrad_lite import viz
from tinygrad_lite.autograd import topological_order
from tinygrad_lite.models.gpt import GPT, GPTConfig
from tinygrad_lite.viz.__main__ import main

EDGE = re.compile(r"^\s*(\w+) -> (\w+);$", re.M)
NODE = re.compile(r"^\s*(\w+) \[label=\"((?:[^\"\\]|\\.)*)\"(.*)\];$", re.M)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(self.hidden(x).tanh())


def mlp_loss(seed=0):
    """A 2-layer MLP's loss, with its backward done (graph kept), and its named parameters."""
    tg.manual_seed(seed)
    model = MLP()
    x = tg.Tensor(np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3))
    loss = (model(x) ** 2).mean()
    loss.backward(retain_graph=True)
    return loss, dict(model.named_parameters())


def small_gpt_loss(num_blocks=2):
    tg.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=7, context_length=4, d_model=8, num_blocks=num_blocks,
                          num_heads=2, dropout=0.0))
    idx = np.arange(8).reshape(2, 4) % 7
    _, loss = model(idx, (idx + 1) % 7)
    return loss, dict(model.named_parameters())


def functions_reached(root) -> set:
    """The Function nodes behind root, found by our own walk (not the library's)."""
    seen, nodes, stack = set(), set(), [root]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t._ctx is not None:
            nodes.add(id(t._ctx))
            stack.extend(p for p in t._ctx.inputs if p.requires_grad)
    return nodes


def test_dot_is_identical_run_to_run_and_for_two_separately_built_graphs():
    loss, params = mlp_loss()
    first = viz.to_dot(loss, params=params)
    assert viz.to_dot(loss, params=params) == first
    loss2, params2 = mlp_loss()  # new tensors, new ids: the text must not depend on them
    assert viz.to_dot(loss2, params=params2) == first
    gpt, gpt_params = small_gpt_loss()
    gpt2, gpt2_params = small_gpt_loss()
    assert viz.to_dot(gpt, gpt_params, cluster_modules=True) == \
        viz.to_dot(gpt2, gpt2_params, cluster_modules=True)


@pytest.mark.parametrize("make", [mlp_loss, small_gpt_loss])
def test_one_op_node_per_function_reached_by_the_walk(make):
    loss, params = make()
    nodes = NODE.findall(viz.to_dot(loss, params=params))
    op_nodes = [n for n in nodes if n[0].startswith("op")]
    assert len(op_nodes) == len(functions_reached(loss))
    assert len(nodes) == len({n[0] for n in nodes})  # every node id once


@pytest.mark.parametrize("make", [mlp_loss, small_gpt_loss])
def test_each_parameter_appears_once_under_its_name(make):
    loss, params = make()
    labels = [label for _, label, _ in NODE.findall(viz.to_dot(loss, params=params))]
    for name, p in params.items():
        assert sum(label.startswith(name + "\\n") for label in labels) == 1, name
        # the shape is printed beside the name
        assert any(label.startswith(f"{name}\\n{tuple(p.shape)} float32") for label in labels)


def test_edges_run_input_to_op_to_output():
    loss, params = mlp_loss()
    dot = viz.to_dot(loss, params=params)
    edges = EDGE.findall(dot)
    order = topological_order(loss)
    for a, b in edges:  # tensor or constant -> op, or op -> the tensor it made
        assert (a[0] in "tc" and b.startswith("op")) or (a.startswith("op") and b[0] == "t")
    for i, t in enumerate(order):
        into = [a for a, b in edges if b == f"op{i}"]
        out_of = [b for a, b in edges if a == f"op{i}"]
        if t._ctx is None:
            assert not into and not out_of
            continue
        assert out_of == [f"t{i}"]
        assert len(into) == len(t._ctx.inputs)
        for parent, source in zip(t._ctx.inputs, into):  # the inputs, in order
            if parent.requires_grad:
                assert source == f"t{next(j for j, u in enumerate(order) if u is parent)}"
            else:
                assert source.startswith("c")
    assert order[-1] is loss and f'op{len(order) - 1} -> t{len(order) - 1};' in dot


def test_op_nodes_are_named_by_class_and_carry_their_derivative_as_tooltip():
    loss, params = mlp_loss()
    dot = viz.to_dot(loss, params=params)
    for i, t in enumerate(topological_order(loss)):
        if t._ctx is not None:
            name = type(t._ctx).__name__
            line = next(line for line in dot.splitlines() if line.strip().startswith(f"op{i} "))
            assert f'label="{name}"' in line
            first_line = type(t._ctx).__doc__.strip().splitlines()[0].strip()
            assert first_line.replace('"', '\\"') in line


def test_small_tensors_show_values_and_grads_large_ones_do_not():
    w = tg.Tensor(np.array([1.5, -2.0], dtype=np.float32), requires_grad=True)
    big = tg.Tensor(np.ones(20, dtype=np.float32), requires_grad=True)
    loss = (w * 3.0).sum() + big.sum()
    loss.backward(retain_graph=True)
    dot = viz.to_dot(loss, params={"w": w, "big": big}, max_values=8)
    assert 'label="w\\n(2,) float32\\ndata [ 1.5, -2. ]\\ngrad [3., 3.]"' in dot
    assert 'label="big\\n(20,) float32"' in dot
    assert "data" not in viz.to_dot(loss, params={"w": w}, max_values=0)


def test_constants_are_drawn_once_and_freed_nodes_are_marked():
    x = tg.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    c = tg.Tensor(np.full(3, 2.0, dtype=np.float32))  # needs no grad: a constant
    loss = ((x * c) + c).sum()
    dot = viz.to_dot(loss)
    assert len(re.findall(r"^\s*c\d+ \[", dot, re.M)) == 1
    assert len([e for e in EDGE.findall(dot) if e[0] == "c0"]) == 2
    loss.backward()  # without retain_graph: Mul saved its inputs and frees them
    assert "Mul (freed)" in viz.to_dot(loss)


def test_clusters_group_a_gpt_by_module():
    loss, params = small_gpt_loss(num_blocks=2)
    dot = viz.to_dot(loss, params=params, cluster_modules=True)
    assert dot.count("{") == dot.count("}")
    labels = re.findall(r'subgraph cluster_\d+ \{\n\s*label="([^"]*)"', dot)
    assert "blocks.0" in labels and "blocks.1" in labels and len(labels) == len(set(labels))
    # every parameter sits inside the cluster of its module
    for name in params:
        module = name.rsplit(".", 1)[0] if "." in name else None
        block = _enclosing_cluster(dot, f'label="{name}\\n')
        assert block == module, name
    # ops go to the module of the parameters they use, else to the common module of their
    # inputs: the attention's ops gather in its cluster, the residual additions stay outside
    ops = [n for n in viz.build_graph(loss, params, cluster_modules=True).nodes if n.kind == "op"]
    module_of = {}
    for n in ops:
        module_of.setdefault(n.label, set()).add(".".join(n.module))
    assert module_of["Softmax"] == {"blocks.0.self_attn", "blocks.1.self_attn"}
    assert module_of["LayerNormOp"] == {"blocks.0.ln1", "blocks.0.ln2", "blocks.1.ln1",
                                      "blocks.1.ln2", "ln_f"}
    assert "" in module_of["Add"]  # the residual stream
    # cut to depth 2: only "blocks.0"-style clusters, no deeper ones
    shallow = viz.to_dot(loss, params=params, cluster_modules=2)
    shallow_labels = re.findall(r'subgraph cluster_\d+ \{\n\s*label="([^"]*)"', shallow)
    assert all(label.count(".") <= 1 for label in shallow_labels) and "blocks.1" in shallow_labels


def _enclosing_cluster(dot: str, text: str, near: str | None = None):
    """Label of the innermost cluster around the first line containing text (after near)."""
    stack, start = [], dot.index(near) if near else 0
    lines = dot.splitlines()
    pending = None
    offset = 0
    for line in lines:
        if "subgraph cluster_" in line:
            pending = True
            stack.append(None)
        elif pending and line.strip().startswith("label="):
            stack[-1] = re.match(r'\s*label="([^"]*)"', line).group(1)
            pending = None
        elif line.strip() == "}" and stack:
            stack.pop()
        elif text in line and offset >= start:
            return stack[-1] if stack else None
        offset += len(line) + 1
    raise AssertionError(f"{text!r} not found")


@pytest.mark.parametrize("engine", ["auto", "matplotlib"])  # auto: dot if installed
def test_draw_svg_parses_as_xml_and_png_has_a_png_header(tmp_path, engine):
    loss, params = mlp_loss()
    svg = viz.draw(loss, tmp_path / "graph.svg", params=params, engine=engine)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert "tanh" in open(svg).read().lower()  # the op names are text in the picture
    png = viz.draw(loss, tmp_path / "graph.png", params=params, engine=engine)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_matplotlib_layout_puts_every_edge_downwards():
    from tinygrad_lite.viz.layout import layout
    loss, params = mlp_loss()
    graph = viz.build_graph(loss, params)
    boxes, width, height = layout(graph)
    assert set(boxes) == {n.id for n in graph.nodes}
    for a, b in graph.edges:
        assert boxes[a][1] > boxes[b][1]  # y grows upwards: an input is above its op
    for x, y, w, h in boxes.values():
        assert 0 <= x - w / 2 and x + w / 2 <= width and 0 <= y - h / 2 and y + h / 2 <= height


def test_draw_errors_say_what_to_do(tmp_path, monkeypatch):
    loss, _ = mlp_loss()
    with pytest.raises(ValueError, match=r"draw: path .*graph\.jpg.* must end in one of .svg"):
        viz.draw(loss, tmp_path / "graph.jpg")
    with pytest.raises(ValueError, match="engine must be"):
        viz.draw(loss, tmp_path / "graph.svg", engine="neato")
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)  # a machine without Graphviz
    with pytest.raises(RuntimeError, match="install graphviz.*engine='matplotlib'"):
        viz.draw(loss, tmp_path / "graph.svg", engine="dot")
    assert viz.draw(loss, tmp_path / "auto.svg").endswith("auto.svg")  # auto falls back
    with pytest.raises(TypeError, match="viz: root must be a Tensor"):
        viz.to_dot(np.ones(3))
    with pytest.raises(TypeError, match="viz: params must be a dict"):
        viz.to_dot(loss, params=[1, 2])
    with pytest.raises(ValueError, match="max_values must be an integer >= 0, got -1"):
        viz.to_dot(loss, max_values=-1)
    with pytest.raises(ValueError, match="cluster_modules must be True/False or a depth >= 1"):
        viz.to_dot(loss, cluster_modules=0)


def test_one_command_draws_a_gpt_and_prints_its_backward_table(tmp_path, capsys):
    path = tmp_path / "gpt.svg"
    main(["--gpt", str(path), "--blocks", "1", "--d-model", "8"])
    printed = capsys.readouterr().out
    ET.parse(path)
    assert "CrossEntropy" in printed.splitlines()[2]  # the walk starts at the loss
    assert f"graph written to {path}" in printed
    assert "LayerNorm" in printed and "Softmax" in printed
