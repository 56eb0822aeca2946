"""How the engine's pieces depend on each other, and what an op's options may not do.

* The dependency runs core -> nn: tensor.py, autograd.py and ops/ never import nn/.
* tensor_base.py (what every tensor is before any op) imports no op and not tensor.py.
* autograd.py is not patched from outside (no ``autograd._Tensor`` set by tensor.py).
* An op's options become attributes of its node, but an option cannot take the name of
  anything the op class defines or the engine keeps on the node (``inputs``, ``freed``, ...).
* Every in-place change bumps the version counter through ``Tensor._bump_version`` -- the
  optimizers' fused updates too -- and only real views share the counter.
"""

from __future__ import annotations


import numpy as np
import pytest

import tinygrad_lite as tg
from fresh_python import run_python
from tinygrad_lite import autograd, optim
from tinygrad_lite.autograd import Function
from tinygrad_lite.ops.reduce import Sum


def test_the_core_does_not_import_nn():
    code = ("import sys, tinygrad_lite as tg\n"
            "x = tg.tensor([[1.0, 2.0], [3.0, 0.5]], requires_grad=True)\n"
            "(x.softmax(-1) * x.log_softmax(0)).sum().backward()\n"
            "print(sorted(m for m in sys.modules if m.startswith('tinygrad_lite.nn')))\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_tensor_base_imports_no_op():
    import ast
    import tinygrad_lite.tensor_base as base
    with open(base.__file__, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    # the module-level imports (tensor.py is imported only under TYPE_CHECKING, for annotations)
    imported = [node.module or alias.name for node in tree.body
                if isinstance(node, ast.ImportFrom) for alias in node.names]  # `from . import x`
    assert "checks" in imported and "autograd" in imported
    assert not [m for m in imported if m == "ops" or m.startswith("ops.") or m == "tensor"], \
        imported
    assert issubclass(tg.Tensor, base.TensorBase) and tg.Tensor.__slots__ == ()


def test_autograd_is_not_patched_by_tensor():
    assert not hasattr(autograd, "_Tensor")
    assert autograd._tensor_class() is tg.Tensor


@pytest.mark.parametrize("name", ["inputs", "freed", "saved_versions", "forward_stack",
                                  "forward", "backward", "backward_arrays", "uses_inputs",
                                  "is_view", "apply"])
def test_an_option_cannot_overwrite_engine_state(name):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match=f"Sum.apply: option name.*'{name}'.*rename"):
        Sum.apply(x, axis=None, keepdims=False, **{name: 1})


def test_an_option_cannot_shadow_the_ops_own_method():
    class Scale(Function):
        """out = x * factor();  dx = g * factor()"""

        def factor(self):
            return 2.0

        def forward(self, x):
            return x * self.factor()

        def backward(self, g, out):
            return g * self.factor()

    x = tg.tensor([1.0, 2.0], requires_grad=True)
    np.testing.assert_array_equal(Scale.apply(x).numpy(), [2.0, 4.0])
    with pytest.raises(TypeError, match="'factor'"):
        Scale.apply(x, factor=3.0)
    with pytest.raises(TypeError, match="'inputs'"):
        Scale(inputs=())


def test_ordinary_options_become_attributes():
    x = tg.tensor([[1.0, 2.0]], requires_grad=True)
    node = x.sum(1, keepdim=True).grad_fn
    assert (node.axis, node.keepdims) == ((1,), True) and node.inputs[0] is x


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: optim.Adam(ps, lr=0.1),
    lambda ps: optim.AdamW(ps, lr=0.1),
    lambda ps: optim.RMSprop(ps, lr=0.1),
], ids=["SGD", "Adam", "AdamW", "RMSprop"])
def test_every_optimizer_step_bumps_the_version(make):
    p = tg.ones(3, requires_grad=True)
    loss = (p * p).sum()  # Mul saves p
    p.grad = tg.ones(3)
    version = p._version[0]
    make([p]).step()
    assert p._version[0] > version
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_only_basic_indexing_shares_the_version_counter():
    x = tg.tensor([1.0, 2.0, 3.0])
    assert x[1:]._version is x._version  # a NumPy view: a change to one changes the other
    picked = x[[0, 2]]  # advanced indexing copies: changing the copy leaves x alone
    assert picked._version is not x._version
    picked.fill_(0.0)
    assert x._version[0] == 0 and x.tolist() == [1.0, 2.0, 3.0]
