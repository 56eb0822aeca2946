"""The engine's behaviour: the graph walk, freeing, grad modes, hooks, in-place safety, anomaly
mode and higher-order gradients."""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest

import tinygrad_lite as tg
import tinygrad_lite.nn.functional as F
from tinygrad_lite import Tensor
from tinygrad_lite.autograd import Function
from tinygrad_lite.testing import gradcheck, gradgradcheck


def leaf(a) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def close(actual, expected, rtol=1e-10, atol=1e-12):
    actual = actual.numpy() if isinstance(actual, Tensor) else actual
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------------
# the walk
# --------------------------------------------------------------------------------------------

def test_chain_of_100000_ops_does_not_hit_the_recursion_limit():
    assert sys.getrecursionlimit() < 100_000  # otherwise this test proves nothing
    x = leaf(0.5)
    y = x
    for _ in range(50_000):
        y = (y * 1.0001) + 0.0  # 100,000 recorded ops
    y.backward()
    close(x.grad, 1.0001 ** 50_000, rtol=1e-9)


def test_deleting_a_long_unbackwarded_graph_does_not_crash():
    x = leaf([1.0])
    y = x
    for _ in range(100_000):
        y = y * 1.0
    del y  # deallocating a 100,000-deep chain must not overflow the C stack
    gc.collect()


def test_diamond_graph_accumulates_every_path():
    x = leaf([1.0, 2.0, 3.0])
    a = x * 2
    b = a + a * a  # a is used three times
    c = b.sum() + a.sum()
    c.backward()
    close(x.grad, 2 * (1 + 2 * (2 * x.numpy())) + 2)


def test_unbroadcast_sums_over_broadcast_axes():
    from tinygrad_lite.autograd import unbroadcast
    g = Tensor(np.arange(24.0).reshape(2, 3, 4))
    close(unbroadcast(g, (3, 1)), np.arange(24.0).reshape(2, 3, 4).sum(axis=(0, 2))[:, None])
    close(unbroadcast(g, ()), np.arange(24.0).sum())
    assert unbroadcast(g, (2, 3, 4)) is g


def test_backward_with_explicit_gradient():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    y.backward(gradient=Tensor(np.array([1.0, 0.5, 0.0])))
    close(x.grad, 2 * x.numpy() * [1.0, 0.5, 0.0])
    z = leaf([1.0, 2.0])
    (z * 3).backward(gradient=[1.0, 1.0])  # a list works too
    close(z.grad, [3.0, 3.0])


def test_backward_of_a_leaf_and_of_a_0d_tensor():
    x = leaf(2.0)
    x.backward()
    close(x.grad, 1.0)
    y = leaf(3.0)
    (y * y * y).backward()
    close(y.grad, 27.0)


def test_gradient_accumulates_over_two_backward_calls():
    x = leaf([1.0, -2.0])
    (x * x).sum().backward()
    first = x.grad.numpy().copy()
    close(first, [2.0, -4.0])
    (x * 3).sum().backward()
    close(x.grad, first + 3)
    x.grad = None
    (x * 3).sum().backward()
    close(x.grad, [3.0, 3.0])


def test_grad_is_a_fresh_array_not_shared_with_other_tensors():
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x + y).sum().backward()
    with tg.no_grad():
        x.grad.zero_()  # what a zero_grad() does; must not touch y.grad
    close(y.grad, [1.0, 1.0])


def test_create_graph_grads_are_not_aliased():
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x + y).sum().backward(create_graph=True)
    with tg.no_grad():
        x.grad.zero_()
    close(y.grad, [1.0, 1.0])


def test_float32_params_with_float64_ops_get_float32_grads():
    w = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    x = Tensor(np.array([0.5, 0.25]))  # float64
    y = (w * x).sum()
    assert y.dtype == np.float64
    y.backward()
    assert w.grad.dtype == np.float32
    close(w.grad, [0.5, 0.25])


def test_float32_end_to_end_keeps_float32():
    w = Tensor(np.ones((3, 2), dtype=np.float32), requires_grad=True)
    x = Tensor(np.ones((4, 3), dtype=np.float32))
    loss = ((x @ w).tanh() * 0.5 + 1).sum()
    assert loss.dtype == np.float32
    loss.backward()
    assert w.grad.dtype == np.float32


# --------------------------------------------------------------------------------------------
# freeing the graph
# --------------------------------------------------------------------------------------------

def test_saved_arrays_are_released_after_backward():
    x = leaf(np.arange(1000.0))
    h = x.sin()
    data_ref = weakref.ref(h.data)
    node_ref = weakref.ref(h._ctx)
    z = (h * h).sum()  # Mul keeps h (and so h.data) for its backward
    del h
    gc.collect()
    assert data_ref() is not None and node_ref() is not None  # held by the graph
    z.backward()
    assert data_ref() is None, "the intermediate's array survived backward()"
    assert node_ref() is None, "the Function node survived backward()"
    # Sum saved nothing, so it stays for another backward; Mul saved h and was freed
    mul_node = z._ctx.inputs[0]._ctx
    assert not z._ctx.freed and mul_node.freed


def test_graph_is_freed_by_reference_counting_alone():
    """No reference cycles: dropping the loss frees the graph without the cyclic collector."""
    gc.disable()
    try:
        x = leaf(np.arange(10.0))
        h = x.exp()
        data_ref, node_ref = weakref.ref(h.data), weakref.ref(h._ctx)
        loss = (h * 2).sum()
        del h, loss  # never backwarded
        assert data_ref() is None and node_ref() is None
    finally:
        gc.enable()


def test_retain_graph_keeps_saved_arrays():
    x = leaf([1.0, 2.0])
    h = x.sin()
    data_ref = weakref.ref(h.data)
    z = (h * h).sum()
    del h
    z.backward(retain_graph=True)
    assert data_ref() is not None
    z.backward()
    close(x.grad, 2 * (2 * np.sin([1.0, 2.0]) * np.cos([1.0, 2.0])))


def test_second_backward_through_freed_graph_raises():
    x = leaf([1.0, 2.0])
    z = (x * x).sum()
    z.backward()
    with pytest.raises(RuntimeError, match=r"(?i)second time.*retain_graph|retain_graph"):
        z.backward()


def test_second_backward_through_a_shared_freed_subgraph_raises():
    x = leaf([1.0, 2.0])
    h = x.exp()
    a = (h * h).sum()
    b = (h * 3).sum()
    a.backward()  # frees the Exp node that b also goes through
    with pytest.raises(RuntimeError, match="(?i)freed"):
        b.backward()


# --------------------------------------------------------------------------------------------
# grad modes
# --------------------------------------------------------------------------------------------

def test_no_grad_context_builds_no_graph():
    x = leaf([1.0, 2.0])
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = (x * 2).exp().sum()
    assert tg.is_grad_enabled()
    assert y._ctx is None and not y.requires_grad and y.is_leaf
    close(y, np.exp([2.0, 4.0]).sum())


def test_no_grad_decorator():
    @tg.no_grad()
    def evaluate(x):
        assert not tg.is_grad_enabled()
        return x * x

    x = leaf([3.0])
    y = evaluate(x)
    assert y._ctx is None and not y.requires_grad
    assert tg.is_grad_enabled()
    assert evaluate.__name__ == "evaluate"


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(KeyError):
        with tg.no_grad():
            raise KeyError
    assert tg.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = leaf([1.0, 2.0])
    with tg.no_grad():
        with tg.enable_grad():
            y = x * x
        z = x * x
    assert y.requires_grad and y._ctx is not None
    assert not z.requires_grad
    y.sum().backward()
    close(x.grad, [2.0, 4.0])

    @tg.enable_grad()
    def f(x):
        return x * 2

    with tg.no_grad():
        assert f(x).requires_grad


def test_set_grad_enabled():
    x = leaf([1.0])
    with tg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        with tg.set_grad_enabled(True):
            assert (x * 2).requires_grad
    assert (x * 2).requires_grad


def test_ops_on_tensors_without_grad_build_no_graph():
    a, b = Tensor(np.ones(3)), Tensor(np.ones(3))
    c = (a * b).exp()
    assert c._ctx is None and not c.requires_grad


# --------------------------------------------------------------------------------------------
# leaves, detach, retain_grad, hooks
# --------------------------------------------------------------------------------------------

def test_is_leaf_and_grad_fn():
    x = leaf([1.0])
    c = Tensor(np.ones(1))
    y = x * 2
    assert x.is_leaf and c.is_leaf and not y.is_leaf
    assert x.grad_fn is None and type(y.grad_fn).__name__ == "MulScalar"
    y.sum().backward()
    assert x.grad is not None and y.grad is None  # non-leaves do not keep .grad by default


def test_detach_shares_data_and_leaves_the_graph():
    x = leaf([1.0, 2.0])
    y = x * 2
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d._ctx is None
    assert np.shares_memory(d.numpy(), y.numpy())
    z = (d * x).sum()  # d is a constant here
    z.backward()
    close(x.grad, [2.0, 4.0])


def test_requires_grad_cannot_be_turned_off_on_a_non_leaf():
    y = leaf([1.0]) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False
    x = Tensor(np.ones(2)).requires_grad_()
    assert x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad


def test_retain_grad_on_a_non_leaf():
    x = leaf([1.0, 2.0])
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    close(y.grad, 2 * y.numpy())
    close(x.grad, 3 * 2 * y.numpy())


def test_hook_sees_the_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    (x * 5).sum().backward()
    assert len(seen) == 1
    close(seen[0], [5.0, 5.0])
    close(x.grad, [5.0, 5.0])


def test_hook_can_replace_the_gradient_and_be_removed():
    x = leaf([1.0, 2.0])
    handle = x.register_hook(lambda g: g * 10)
    (x * 2).sum().backward()
    close(x.grad, [20.0, 20.0])
    handle.remove()
    x.grad = None
    (x * 2).sum().backward()
    close(x.grad, [2.0, 2.0])
    handle.remove()  # removing twice is harmless


def test_hook_on_an_intermediate_changes_what_flows_upstream():
    x = leaf([1.0, 2.0])
    y = x * 3
    seen = []
    y.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 0)
    (y * y).sum().backward()
    close(seen[0], 2 * y.numpy())
    close(x.grad, [0.0, 0.0])


def test_hook_runs_once_on_the_total_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    (x * 2 + x * x).sum().backward()  # two paths into x
    assert len(seen) == 1
    close(seen[0], 2 + 2 * x.numpy())


def test_several_hooks_run_in_order():
    x = leaf([1.0])
    x.register_hook(lambda g: g + 1)
    x.register_hook(lambda g: g * 10)
    (x * 2).sum().backward()
    close(x.grad, [30.0])


# --------------------------------------------------------------------------------------------
# in-place operations and the version counter
# --------------------------------------------------------------------------------------------

def test_inplace_change_of_a_needed_constant_raises():
    x = leaf([1.0, 2.0])
    c = Tensor(np.array([3.0, 4.0]))
    y = (x * c).sum()  # Mul's backward reads c
    c += 1
    with pytest.raises(RuntimeError, match="in-place") as info:
        y.backward()
    assert "Mul" in str(info.value)


def test_inplace_change_of_a_needed_intermediate_under_no_grad_raises():
    x = leaf([1.0, 2.0])
    h = x * 2
    z = h.sin().sum()  # Sin's backward reads h
    with tg.no_grad():
        h += 1
    with pytest.raises(RuntimeError, match="in-place"):
        z.backward()


def test_inplace_change_of_a_needed_output_raises():
    x = leaf([1.0, 2.0])
    y = x.exp()  # Exp's backward reads its output
    z = y.sum()
    with tg.no_grad():
        y.mul_(2)
    with pytest.raises(RuntimeError, match="in-place"):
        z.backward()


def test_inplace_change_through_a_view_is_detected():
    x = leaf([1.0, 2.0, 3.0])
    h = x * 1.0
    z = h.sin().sum()
    view = h[0:2]  # a basic slice shares memory -- and the version counter
    with tg.no_grad():
        view.zero_()
    with pytest.raises(RuntimeError, match="in-place"):
        z.backward()
    r = x * 1.0
    w = (r.reshape(3, 1).sin()).sum()
    with tg.no_grad():
        r.reshape(1, 3).fill_(0.0)
    with pytest.raises(RuntimeError, match="in-place"):
        w.backward()


def test_detach_shares_the_version_counter():
    x = leaf([1.0, 2.0])
    y = x.exp()
    loss = y.sum()
    y.detach().zero_()  # same memory: Exp's saved output is gone
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()


def test_inplace_change_of_a_tensor_backward_does_not_need_is_fine():
    x = leaf([1.0, 2.0])
    c = Tensor(np.array([3.0, 4.0]))
    y = (x + c).sum()  # Add's backward needs neither input
    c += 1
    y.backward()
    close(x.grad, [1.0, 1.0])
    x.grad = None
    e = x.exp()  # Exp's backward needs its output, not its input
    loss = e.sum()
    with tg.no_grad():
        x.add_(100.0)  # the optimizer-step pattern
    loss.backward()
    close(x.grad, np.exp([1.0, 2.0]))


def test_inplace_on_a_leaf_requiring_grad_while_recording_raises():
    x = leaf([1.0, 2.0])
    for op in (lambda t: t.__iadd__(1.0), lambda t: t.mul_(2.0), lambda t: t.zero_(),
               lambda t: t.fill_(3.0), lambda t: t.sub_(1.0), lambda t: t.copy_(np.ones(2))):
        with pytest.raises(RuntimeError, match="in-place") as info:
            op(x)
        assert "leaf" in str(info.value)
    close(x, [1.0, 2.0])  # nothing was changed


def test_inplace_on_a_graph_tensor_or_with_a_grad_operand_while_recording_raises():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="in-place"):
        y += 1
    c = Tensor(np.zeros(2))
    with pytest.raises(RuntimeError, match="in-place"):
        c += x  # the update would silently drop x's gradient


def test_inplace_ops_under_no_grad_update_values_and_version():
    x = leaf([1.0, 2.0])
    v0 = x._version[0]
    with tg.no_grad():
        x -= 0.5
        x *= 2
        x /= 4
        x.add_(Tensor(np.array([1.0, 1.0])), alpha=2.0)
        x.sub_(1.0)
        x[0] = 10.0
    close(x, [10.0, 1.75])
    assert x._version[0] == v0 + 6
    assert x.requires_grad and x.is_leaf


def test_inplace_ops_on_plain_tensors():
    t = Tensor(np.zeros(3))
    t += 1
    t.mul_(3)
    t.div_(2)
    t[1:] = Tensor(np.array([5.0, 6.0]))
    close(t, [1.5, 5.0, 6.0])
    t.zero_()
    close(t, np.zeros(3))
    t.copy_(np.array([1.0, 2.0, 3.0]))
    close(t, [1.0, 2.0, 3.0])
    i = Tensor([1, 2])
    i += 1
    assert i.dtype == np.int64 and i.tolist() == [2, 3]


# --------------------------------------------------------------------------------------------
# anomaly mode
# --------------------------------------------------------------------------------------------

def test_detect_anomaly_names_the_forward_op():
    x = leaf([-1.0, 1.0])
    with np.errstate(all="ignore"):
        with tg.detect_anomaly():
            with pytest.raises(RuntimeError, match="Log") as info:
                x.log()
        assert "NaN" in str(info.value)
        y = x.log()  # outside the mode: NaN propagates silently
    assert np.isnan(y.numpy()[0])


def test_detect_anomaly_names_the_backward_op():
    x = leaf([0.0, 1.0])
    with np.errstate(all="ignore"):
        with tg.detect_anomaly():
            y = x.sqrt().sum()  # forward is finite: sqrt(0) = 0
            with pytest.raises(RuntimeError, match="Sqrt") as info:
                y.backward()  # backward: 1 / (2 sqrt(0)) = Inf
    assert "backward" in str(info.value) and "Inf" in str(info.value)


def test_detect_anomaly_names_a_custom_backward():
    class BrokenBackward(Function):
        def forward(self, x):
            return x * 2

        def backward(self, g, out):
            return g * Tensor(np.full(g.shape, np.nan))

    x = leaf([1.0, 2.0])
    with tg.detect_anomaly():
        y = BrokenBackward.apply(x).sum()
        with pytest.raises(RuntimeError, match="BrokenBackward") as info:
            y.backward()
    assert "NaN" in str(info.value)
    assert not tg.autograd._anomaly_enabled  # the mode is off again


# --------------------------------------------------------------------------------------------
# higher-order gradients
# --------------------------------------------------------------------------------------------

def _f(x, A):
    """A smooth scalar function with a non-diagonal Hessian."""
    return ((A @ x).tanh() ** 2).sum() + (x * x * x).sum() * 0.1


def _grad_f(x_np, A):
    x = leaf(x_np)
    _f(x, A).backward()
    return x.grad.numpy()


def test_hessian_vector_product_with_backward_create_graph(rng):
    A = Tensor(rng.standard_normal((4, 3)))
    x0, v = rng.standard_normal(3), rng.standard_normal(3)
    x = leaf(x0)
    _f(x, A).backward(create_graph=True)
    g = x.grad
    assert g.requires_grad  # the gradient is itself part of a graph
    close(g, _grad_f(x0, A))
    x.grad = None
    (g * Tensor(v)).sum().backward()
    eps = 1e-5
    fd = (_grad_f(x0 + eps * v, A) - _grad_f(x0 - eps * v, A)) / (2 * eps)
    close(x.grad, fd, rtol=1e-6, atol=1e-8)


def test_hessian_vector_product_with_functional_grad(rng):
    A = Tensor(rng.standard_normal((4, 3)))
    x0, v = rng.standard_normal(3), rng.standard_normal(3)
    x = leaf(x0)
    (g,) = tg.grad(_f(x, A), [x], create_graph=True)
    (hvp,) = tg.grad((g * Tensor(v)).sum(), x)
    assert x.grad is None  # grad() returns gradients, it does not store them
    eps = 1e-5
    fd = (_grad_f(x0 + eps * v, A) - _grad_f(x0 - eps * v, A)) / (2 * eps)
    close(hvp, fd, rtol=1e-6, atol=1e-8)


def test_full_hessian_of_a_quadratic_is_exact(rng):
    M = rng.standard_normal((3, 3))
    S = Tensor(M + M.T)
    x = leaf(rng.standard_normal(3))
    (g,) = tg.grad(0.5 * (x @ (S @ x)), [x], create_graph=True)
    rows = [tg.grad(g[i], x, retain_graph=True)[0].numpy() for i in range(3)]
    close(np.stack(rows), M + M.T)


def test_gradient_penalty_is_checked_by_gradcheck(rng):
    """d/dw ||d loss(w, x)/dx||^2 -- the WGAN-GP pattern -- against finite differences."""
    x0 = rng.standard_normal((5, 3))

    def penalty(w):
        with tg.enable_grad():  # gradcheck also evaluates fn under no_grad
            x = leaf(x0)
            loss = (x @ w).tanh().sum()
            (gx,) = tg.grad(loss, [x], create_graph=True)
            return (gx * gx).sum()

    w = leaf(rng.standard_normal((3, 2)))
    gradcheck(penalty, [w])
    p = penalty(w)
    p.backward()
    assert w.grad is not None and np.abs(w.grad.numpy()).max() > 0


def test_second_derivative_of_composites():
    x = leaf([0.3, -0.7, 1.1])
    gradgradcheck(lambda x: F.softmax(x * x, -1), [x])
    gradgradcheck(lambda x: (x.sigmoid() * x.exp()).logsumexp(), [x])
    gradgradcheck(lambda x: (x.reshape(3, 1) @ x.reshape(1, 3)).tanh(), [x])


def test_backward_twice_with_create_graph_accumulates_a_graph():
    x = leaf([2.0])
    (x ** 3).sum().backward(create_graph=True)
    (x ** 3).sum().backward(create_graph=True)
    close(x.grad, [24.0])  # 2 * 3x^2
    g = x.grad
    x.grad = None
    g.sum().backward()
    close(x.grad, [24.0])  # d/dx 2 * 3x^2 = 12x


def test_grad_allow_unused():
    x, unused = leaf([1.0, 2.0]), leaf([3.0])
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        tg.grad(y, [x, unused], retain_graph=True)
    gx, gu = tg.grad(y, [x, unused], allow_unused=True)
    close(gx, [2.0, 4.0])
    assert gu is None


def test_grad_with_grad_outputs_and_several_outputs():
    x = leaf([1.0, 2.0])
    y1, y2 = x * 2, x * x
    (gx,) = tg.grad([y1, y2], x, grad_outputs=[Tensor(np.array([1.0, 1.0])),
                                             Tensor(np.array([0.5, 2.0]))])
    close(gx, 2 + 2 * x.numpy() * [0.5, 2.0])
    assert x.grad is None


def test_grad_of_a_non_leaf_input():
    x = leaf([1.0, 2.0])
    h = x * 3
    (gh,) = tg.grad((h * h).sum(), [h])
    close(gh, 2 * h.numpy())
