"""PyTorch habits that the engine must honour (issue 9, part 1): the package namespace,
``grad`` returning a tuple, a second backward through a graph that saved nothing, PyTorch's
exception classes, and hooks that may not change a gradient's shape or dtype. Expected values
are computed by hand (PyTorch itself stays optional)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite import Tensor


def leaf(a) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


# -- the package namespace -------------------------------------------------------------------

def _fresh_python(code: str) -> str:
    """Run ``code`` in a new interpreter (so no test has imported a subpackage yet)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_subpackages_are_attributes_after_import_tinygrad_lite():
    out = _fresh_python(
        "import sys, tinygrad_lite as tg\n"
        "lazy = ['tinygrad_lite.' + m for m in ('nn', 'optim', 'train', 'models', 'text')]\n"
        "print([m for m in lazy if m in sys.modules])\n"  # not imported by the package import
        "print(tg.optim.AdamW.__name__, tg.nn.ModuleDict.__name__, tg.optim.lr_scheduler.StepLR"
        ".__name__, tg.data.DataLoader.__name__, tg.testing.gradcheck.__name__,"
        " tg.autograd.grad is tg.grad, tg.kernels.__name__, tg.ops.__name__)\n"
        "print(tg.train.EarlyStopping.__name__, tg.models.GPT.__name__, tg.text.__name__)\n"
        "print(all(n in dir(tg) for n in ('nn', 'optim', 'train', 'models', 'text')))\n")
    assert out.splitlines() == [
        "[]",
        "AdamW ModuleDict StepLR DataLoader gradcheck True tinygrad_lite.kernels tinygrad_lite.ops",
        "EarlyStopping GPT tinygrad_lite.text",
        "True",
    ]


def test_unknown_package_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'optimm'"):
        tg.optimm
    assert not hasattr(tg, "no_such_thing")


# -- grad() always returns a tuple -----------------------------------------------------------

def test_grad_of_a_single_tensor_returns_a_one_tuple():
    x = leaf([1.0, -2.0, 3.0])
    result = tg.grad((x * x).sum(), x)
    assert type(result) is tuple and len(result) == 1
    np.testing.assert_allclose(result[0].numpy(), [2.0, -4.0, 6.0])
    gx, gx_again = tg.grad((x * leaf(2.0)).sum(), [x, x])  # one result per entry, as torch
    np.testing.assert_allclose(gx.numpy(), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(gx_again.numpy(), [2.0, 2.0, 2.0])


# -- a second backward through a graph that saved nothing ------------------------------------

def test_second_backward_through_a_graph_that_saved_nothing_accumulates():
    x = leaf([1.0, 2.0, 3.0])
    z = (x + 1).sum()  # AddScalar and Sum read no values in backward
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 1.0])
    z.backward()  # allowed, as in PyTorch: x.grad doubles
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])
    y = x.reshape(3, 1).expand(3, 2)[1:]  # view ops and a slice save shapes only
    w = (y - 2.0).sum() + (x * 3.0).sum()
    x.grad = None
    w.backward()
    w.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * np.array([3.0, 5.0, 5.0]))


def test_second_backward_through_a_node_that_saved_values_still_raises():
    x = leaf([1.0, 2.0])
    y = (x + 1).sum() + (x * x).sum()  # Mul saved x: freed after the first backward
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*Mul"):
        y.backward()
    h = leaf([0.5, 1.5]).exp()  # Exp saved its output
    s = h.sum()
    s.backward()
    with pytest.raises(RuntimeError, match="second time.*Exp.*retain_graph=True"):
        s.backward()


def test_nodes_that_keep_arrays_are_freed():
    x = leaf(np.arange(6.0).reshape(2, 3))
    picked = x[np.array([1, 0, 1])]  # an index array is a saved value (torch saves indices too)
    node = picked._ctx
    assert node.saves_values() and not (x.reshape(6)._ctx.saves_values())
    picked.sum().backward()
    assert node.freed
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 1, 1], [2, 2, 2]])


def test_retain_graph_still_allows_a_second_backward_through_saved_values():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


# -- PyTorch's exception classes -------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: tg.tensor([1, 2], requires_grad=True),
                                  lambda: tg.arange(3).requires_grad_(),
                                  lambda: Tensor(np.array([True]), requires_grad=True)])
def test_requires_grad_on_a_non_float_tensor_is_a_runtime_error(make):
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require "
                                           "gradients"):
        make()


def test_gradient_of_the_wrong_shape_is_a_runtime_error():
    y = leaf([1.0, 2.0, 3.0]) * 2
    with pytest.raises(RuntimeError, match=r"Mismatch in shape.*\(2,\).*\(3,\)"):
        y.backward(gradient=np.ones(2))
    with pytest.raises(RuntimeError, match=r"Mismatch in shape"):
        tg.grad(y, y, grad_outputs=tg.ones(3, 1))


def test_other_autograd_errors_are_runtime_errors():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.grad((x * 2).sum(), tg.ones(2))
    with pytest.raises(RuntimeError, match="allow_unused"):
        tg.grad((x * 2).sum(), [x, leaf([0.0])])
    with pytest.raises(RuntimeError, match="grad_outputs"):
        tg.grad([x * 2, x * 3], x, grad_outputs=[tg.ones(2)])
    with pytest.raises(RuntimeError, match="hook"):
        tg.ones(2).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="callable"):
        x.register_hook("not a function")


# -- hooks may not change a gradient's shape or dtype ----------------------------------------

def test_hook_that_changes_the_shape_raises_naming_the_hook_and_shapes():
    x = leaf([1.0, 2.0, 3.0])

    def widen(g):
        return tg.ones(2, 3, dtype=np.float64)

    x.register_hook(widen)
    with pytest.raises(RuntimeError, match=r"hook '.*widen' has changed the size of value.*"
                                           r"\(3,\).*\(2, 3\)"):
        (x * 2).sum().backward()
    assert x.grad is None  # nothing was stored


def test_hook_that_changes_the_dtype_raises():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g.to(np.float32))
    with pytest.raises(RuntimeError, match=r"hook .*lambda.* has changed the type of value.*"
                                           r"float64.*float32"):
        (x * 2).sum().backward()


def test_hook_on_an_intermediate_that_changes_the_shape_raises():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match=r"changed the size of value.*\(2,\).*\(\)"):
        y.sum().backward()


def test_hook_keeping_shape_and_dtype_still_replaces_the_gradient():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 10)
    x.register_hook(lambda g: np.asarray(g.numpy() + 1))  # an array of the same shape/dtype
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [21.0, 21.0])


def test_wrong_types_given_to_grad_and_backward_are_type_errors():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(TypeError, match="grad: outputs must be a Tensor"):
        tg.grad(3.0, x)
    with pytest.raises(TypeError, match="grad: inputs must be a Tensor"):
        tg.grad(y.sum(), [x, "x"])
    with pytest.raises(TypeError, match="backward: gradient must be a Tensor.*str"):
        y.backward(gradient="ab")
    y.backward(gradient=[1.0, 0.5])  # a list of numbers of the right shape is fine
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 1.0])
