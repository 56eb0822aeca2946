"""tinygrad_lite.trace: the backward trace lists the nodes in the order run_backward visits them,
with the real gradients' norms, the forward trace names the line that ran each op, and tracing
changes no result."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import tinygrad_lite as tg
import tinygrad_lite.nn as nn
from tinygrad_lite import autograd
from tinygrad_lite.autograd import Function, topological_order
from tinygrad_lite.models.gpt import GPT, GPTConfig
from tinygrad_lite.trace import saved_bytes, trace_backward, trace_forward


def norm(array) -> float:
    return float(np.linalg.norm(np.asarray(array, dtype=np.float64).ravel()))


def mlp_graph(seed=0):
    """x -> Linear -> tanh -> Linear -> squared error: leaves used once, intermediates kept."""
    tg.manual_seed(seed)
    l1, l2 = nn.Linear(3, 4), nn.Linear(4, 2)
    x = tg.randn(5, 3, requires_grad=True)
    h = l1(x).tanh()
    out = l2(h)
    loss = ((out - tg.ones(5, 2)) ** 2).mean()
    return loss, [x, l1.weight, l1.bias, l2.weight, l2.bias]


def small_gpt(seed=0):
    tg.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=7, context_length=4, d_model=8, num_blocks=1, num_heads=2,
                          dropout=0.0))
    idx = np.arange(8).reshape(2, 4) % 7
    return model, idx


def record_backward_calls(monkeypatch, root) -> list:
    """Wrap the backward methods of every Function class in root's graph -- ``backward`` and,
    where an op has one, its first-order ``backward_arrays`` (the walk calls one of the two per
    node) -- and return the calls, in order."""
    calls = []
    classes = {type(t._ctx) for t in topological_order(root) if t._ctx is not None}
    for cls in classes:
        for method in ("backward", "backward_arrays"):
            original = getattr(cls, method, None)
            if original is None:
                continue

            def wrapped(self, g, out, original=original):
                calls.append((type(self).__name__, tuple(out.shape)))
                return original(self, g, out)
            monkeypatch.setattr(cls, method, wrapped)
    return calls


@pytest.mark.parametrize("graph", ["mlp", "gpt"])
def test_rows_are_the_nodes_in_the_order_run_backward_visits_them(monkeypatch, graph):
    if graph == "mlp":
        loss, _ = mlp_graph()
    else:
        model, idx = small_gpt()
        _, loss = model(idx, (idx + 1) % 7)
    calls = record_backward_calls(monkeypatch, loss)
    with trace_backward() as t:
        loss.backward()
    assert len(calls) > 5
    assert [(r.op, r.shape) for r in t.rows] == calls
    assert [r.step for r in t.rows] == list(range(len(calls)))


def test_gradient_norms_are_the_real_gradients_norms():
    loss, leaves = mlp_graph()
    order = topological_order(loss)
    for t in order:
        if t._ctx is not None:
            t.retain_grad()
    # every node's output gets a gradient, so rows follow the reversed topological order
    computed = [u for u in reversed(order) if u._ctx is not None]
    inputs_of = [list(u._ctx.inputs) for u in computed]  # backward frees them
    with trace_backward() as t:
        loss.backward()
    assert len(t.rows) == len(computed)
    for row, tensor in zip(t.rows, computed):
        assert row.op == type(tensor._ctx).__name__ and row.shape == tensor.shape
        assert row.grad_norm == pytest.approx(norm(tensor.grad.data), rel=1e-6)
    assert t.rows[0].grad_norm == 1.0  # the seed dL/dL
    # each leaf is used by one op: what that op handed it is the leaf's .grad
    handed = {}
    for row, inputs in zip(t.rows, inputs_of):
        for parent, given in zip(inputs, row.input_grads):
            if given is not None:
                handed.setdefault(id(parent), []).append(given)
            else:
                assert not parent.requires_grad
    for leaf in leaves:
        ((shape, given_norm),) = handed[id(leaf)]
        assert shape == leaf.shape
        assert given_norm == pytest.approx(norm(leaf.grad.data), rel=1e-6)


def test_tracing_changes_no_result():
    def grads(traced: bool):
        if traced:
            with trace_forward(), trace_backward():
                loss, leaves = mlp_graph(seed=3)
                loss.backward()
        else:
            loss, leaves = mlp_graph(seed=3)
            loss.backward()
        return loss.item(), [leaf.grad.numpy() for leaf in leaves]

    plain_loss, plain = grads(False)
    traced_loss, traced = grads(True)
    assert plain_loss == traced_loss
    for a, b in zip(plain, traced):
        np.testing.assert_array_equal(a, b)


def test_freed_bytes_are_the_saved_values_and_zero_with_retain_graph():
    a = tg.Tensor(np.ones((3, 4), dtype=np.float32), requires_grad=True)
    b = tg.Tensor(np.ones((4, 2), dtype=np.float32), requires_grad=True)
    loss = (a @ b).sum()
    assert saved_bytes((a @ b)._ctx, None) == 48 + 32
    with trace_backward() as kept:
        loss.backward(retain_graph=True)
    assert [r.freed_bytes for r in kept.rows] == [0, 0]
    with trace_backward() as t:
        loss.backward()
    by_op = {r.op: r.freed_bytes for r in t.rows}
    assert by_op == {"Sum": 0, "MatMul": 48 + 32}  # Sum saved nothing, MatMul its two inputs
    assert all(r.seconds >= 0 for r in t.rows)


def test_table_prints_one_line_per_node():
    loss, _ = mlp_graph()
    with trace_backward() as t:
        loss.backward()
    lines = t.table().splitlines()
    assert lines[0].split()[:3] == ["step", "op", "out"]
    assert len(lines) == 2 + len(t.rows) + 1  # header, rule, rows, total
    assert [line.split()[1] for line in lines[2:-1]] == [r.op for r in t.rows]
    assert lines[-1].startswith(f"{len(t.rows)} nodes")


def test_forward_trace_names_each_op_and_the_line_that_ran_it():
    x = tg.Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    w = tg.Tensor(np.ones((3, 4), dtype=np.float32), requires_grad=True)
    with trace_forward() as fwd:
        line = sys._getframe().f_lineno + 1
        y = (x @ w).relu()
        loss = y.sum()
    assert [(r.op, r.shape) for r in fwd.rows] == [("MatMul", (2, 4)), ("Relu", (2, 4)),
                                                    ("Sum", ())]
    assert fwd.rows[0].input_shapes == [(2, 3), (3, 4)]
    where = f"test_trace.py:{line} in test_forward_trace_names_each_op_and_the_line_that_ran_it"
    assert fwd.rows[0].where.endswith(where) and fwd.rows[1].where.endswith(where)
    assert fwd.rows[0].user_line == fwd.rows[0].where  # called directly from this test
    assert fwd.rows[2].where.endswith(f"test_trace.py:{line + 1} in " + where.split(" in ")[1])
    assert all(r.in_graph and r.phase == "forward" for r in fwd.rows)
    assert "MatMul" in fwd.table() and "test_trace.py" in fwd.table()
    # the backward trace reports where each node's forward ran
    with trace_backward() as bwd:
        loss.backward()
    assert bwd.rows[-1].op == "MatMul" and bwd.rows[-1].made_at.endswith(where)


def test_forward_trace_inside_a_layer_names_the_layer_and_the_users_line():
    layer = nn.Linear(3, 2)
    x = tg.Tensor(np.ones((4, 3), dtype=np.float32))
    with trace_forward() as fwd:
        line = sys._getframe().f_lineno + 1
        layer(x)
    (row,) = fwd.rows
    assert "tinygrad_lite" in row.where  # inside the library (nn.functional.linear)
    assert row.user_line.endswith(f"test_trace.py:{line} in "
                                  f"test_forward_trace_inside_a_layer_names_the_layer_and_the_"
                                  f"users_line")


def test_ops_run_by_backward_formulas_are_marked_as_backward():
    x = tg.Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    with trace_forward() as fwd:
        loss = (x * x).sum()
        loss.backward()
    phases = [r.phase for r in fwd.rows]
    assert phases[:2] == ["forward", "forward"] and set(phases[2:]) == {"backward"}
    assert [r.where.split(" in ")[1] for r in fwd.rows[2:]] == ["backward"] * 4 + ["run_backward"]
    assert not any(r.in_graph for r in fwd.rows[2:])


def test_tracing_is_off_outside_the_blocks_even_after_an_error():
    original_apply = Function.__dict__["apply"]
    with pytest.raises(ZeroDivisionError):
        with trace_forward(), trace_backward():
            assert autograd._tracer is not None
            1 / 0
    assert autograd._tracer is None
    assert Function.__dict__["apply"] is original_apply
    x = tg.Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    assert not hasattr((x * x)._ctx, "traced_at")


def test_nested_backward_blocks_record_separately():
    x = tg.Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    with trace_backward() as outer:
        (x * 2.0).sum().backward()
        with trace_backward() as inner:
            (x * 3.0).sum().backward()
        (x * 4.0).sum().backward()
    assert [r.op for r in inner.rows] == ["Sum", "MulScalar"]
    assert [r.op for r in outer.rows] == ["Sum", "MulScalar"] * 2
    assert autograd._tracer is None


def test_double_backward_is_traced_with_each_walk():
    x = tg.Tensor(np.array([0.5, -1.0]), requires_grad=True)
    with trace_backward() as t:
        (gx,) = tg.grad((x ** 3).sum(), x, create_graph=True)
        gx.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.numpy())
    first_walk = [r.op for r in t.rows[:2]]
    assert first_walk == ["Sum", "PowScalar"] and len(t.rows) > 2


class SquareByInnerGrad(Function):
    """out = x**2;  dx = g * d(x**2)/dx, computed by a nested walk (a test of nesting)"""

    def forward(self, x):
        return x * x

    def backward(self, g, out):
        (x,) = self.inputs
        x_copy = x.detach().requires_grad_(True)
        with tg.enable_grad():  # the walk runs its nodes' backwards without recording
            inner = (x_copy * x_copy).sum()
        (d,) = tg.grad(inner, x_copy)  # a walk inside this node's backward
        return g * d


def test_a_walk_inside_a_node_backward_is_listed_after_that_node_and_indented():
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with trace_backward() as t:
        SquareByInnerGrad.apply(x).sum().backward()
    assert [(r.op, r.depth) for r in t.rows] == [
        ("Sum", 0), ("SquareByInnerGrad", 0), ("Sum", 1), ("Mul", 1)]  # visit order
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    assert all(r.seconds >= 0 for r in t.rows)
    # not a timing test: the inner nodes' intervals lie inside the outer node's interval on a
    # monotonic clock, so the outer one is at least their sum on any machine
    assert t.rows[1].seconds >= t.rows[2].seconds + t.rows[3].seconds
    assert "\n2     " in t.table() and "  Sum" in t.table()  # indented under their node


def test_a_backward_that_raises_leaves_an_unfinished_row_and_clean_state():
    x = tg.Tensor(np.ones(3), requires_grad=True)
    loss = (x * x).sum()
    with tg.no_grad():
        x.mul_(2.0)  # changes a value Mul's backward needs: the walk raises there
    with trace_backward() as t:
        with pytest.raises(RuntimeError, match="modified by an in-place operation"):
            loss.backward()
    assert [r.op for r in t.rows] == ["Sum", "Mul"]
    assert np.isnan(t.rows[1].seconds) and t.rows[1].input_grads == []
    assert autograd._tracer is None and t.total_seconds == t.rows[0].seconds


def test_tracing_a_gpt_step_changes_no_gradient():
    def gpt_grads(traced: bool):
        model, idx = small_gpt(seed=1)
        if traced:
            with trace_forward(), trace_backward() as t:
                _, loss = model(idx, (idx + 1) % 7)
                loss.backward()
            assert len(t.rows) > 20
        else:
            _, loss = model(idx, (idx + 1) % 7)
            loss.backward()
        return {name: p.grad.numpy() for name, p in model.named_parameters()}

    plain, traced = gpt_grads(False), gpt_grads(True)
    assert plain.keys() == traced.keys()
    for name in plain:
        np.testing.assert_array_equal(plain[name], traced[name], err_msg=name)
