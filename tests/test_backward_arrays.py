"""Every op's fast first-order ``backward_arrays`` agrees with its Tensor-op ``backward``.

The rule (``Function``'s docstring in autograd.py): ``backward`` is the readable statement of
the derivative, used when the backward pass is recorded (``create_graph=True``); an op may add
``backward_arrays``, the same first derivative on arrays, which the walk uses otherwise. Each
test here runs both on the same node and compares them. The ops are found by walking the
subclasses of ``Function``, so a new op with a fast path fails ``test_every_fast_op_has_cases``
until cases for it are added below.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_lite as tg
from tinygrad_lite.autograd import Function
from tinygrad_lite.nn import functional as F


def _fast_ops() -> set:
    """The names of the package's Function classes that define ``backward_arrays``."""
    found, todo = set(), list(Function.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.backward_arrays is not None and cls.__module__.startswith("tinygrad_lite."):
            found.add(cls.__name__)
    return found


def _leaf(rng, shape, dtype, requires_grad=True):
    return tg.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=requires_grad)


def _targets(rng, n, classes, ignored=()):
    t = rng.integers(0, classes, n)
    t[list(ignored)] = -100  # the default ignore_index
    return t


# (op name, case id, build(rng, dtype) -> the op's output tensor)
CASES = [
    ("Softmax", "last axis", lambda r, d: F.softmax(_leaf(r, (3, 5), d), -1)),
    ("Softmax", "middle axis", lambda r, d: F.softmax(_leaf(r, (2, 4, 3), d), 1)),
    ("LogSoftmax", "last axis", lambda r, d: F.log_softmax(_leaf(r, (3, 5), d), -1)),
    ("LogSoftmax", "first axis", lambda r, d: F.log_softmax(_leaf(r, (4, 3), d), 0)),
    ("CrossEntropy", "mean (fused kernel), an ignored row",
     lambda r, d: F.cross_entropy(_leaf(r, (5, 7), d), _targets(r, 5, 7, ignored=[2]))),
    ("CrossEntropy", "sum", lambda r, d: F.cross_entropy(_leaf(r, (4, 6), d), _targets(r, 4, 6),
                                                        reduction="sum")),
    ("CrossEntropy", "none", lambda r, d: F.cross_entropy(_leaf(r, (4, 6), d), _targets(r, 4, 6),
                                                         reduction="none")),
    ("CrossEntropy", "mean, label smoothing",
     lambda r, d: F.cross_entropy(_leaf(r, (4, 6), d), _targets(r, 4, 6, ignored=[0]),
                                  label_smoothing=0.2)),
    ("LayerNormOp", "one normalized axis",
     lambda r, d: F.layer_norm(_leaf(r, (2, 3, 4), d), (4,), _leaf(r, (4,), d), _leaf(r, (4,), d))),
    ("LayerNormOp", "two axes, constant weight and bias",
     lambda r, d: F.layer_norm(_leaf(r, (2, 3, 4), d), (3, 4), _leaf(r, (3, 4), d, False),
                               _leaf(r, (3, 4), d, False))),
    ("LinearOp", "3-d input", lambda r, d: F.linear(_leaf(r, (2, 3, 4), d), _leaf(r, (5, 4), d),
                                                   _leaf(r, (5,), d))),
    ("LinearOp", "input without grad", lambda r, d: F.linear(_leaf(r, (3, 4), d, False),
                                                            _leaf(r, (2, 4), d), _leaf(r, (2,), d))),
]


def test_every_fast_op_has_cases():
    assert _fast_ops() == {name for name, _, _ in CASES}


@pytest.mark.parametrize("seed_grad", ["ones", "random"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, build", [(n, b) for n, _, b in CASES],
                         ids=[f"{n}: {i}" for n, i, _ in CASES])
def test_backward_arrays_matches_backward(backend, rng, name, build, dtype, seed_grad):
    out = build(rng, dtype)
    node = out.grad_fn
    assert type(node).__name__ == name
    g = (np.ones(out.shape, dtype) if seed_grad == "ones"
         else rng.uniform(0.5, 1.5, out.shape).astype(dtype))
    with tg.no_grad():
        slow = node.backward(tg.tensor(g), out)
    fast = node.backward_arrays(g, out.data)
    slow = slow if isinstance(slow, tuple) else (slow,)
    fast = fast if isinstance(fast, tuple) else (fast,)
    assert len(slow) == len(fast) == len(node.inputs)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-13)
    compared = 0
    for i, (t, s, f) in enumerate(zip(node.inputs, slow, fast)):
        if not t.requires_grad:  # the fast path may skip gradients nobody asked for
            continue
        assert f.shape == t.shape and f.dtype == t.dtype, (i, f.shape, f.dtype)
        np.testing.assert_allclose(f, s.data, **tol, err_msg=f"{name} input {i}")
        compared += 1
    assert compared >= 1


def test_the_walk_uses_backward_arrays_only_when_not_recording(rng, monkeypatch):
    """A first-order backward goes through backward_arrays; create_graph=True through backward
    (whose result is recorded, so it can be differentiated again)."""
    calls = []
    original = tg.ops.nn.Softmax.backward_arrays

    def spy(self, g, y):
        calls.append("arrays")
        return original(self, g, y)

    monkeypatch.setattr(tg.ops.nn.Softmax, "backward_arrays", spy)
    x = _leaf(rng, (2, 3), np.float64)
    w = tg.tensor(rng.standard_normal((2, 3)))
    (x.softmax(-1) * w).sum().backward()
    assert calls == ["arrays"]
    (gx,) = tg.grad((x.softmax(-1) * w).sum(), x, create_graph=True)
    assert calls == ["arrays"] and gx.requires_grad
    np.testing.assert_allclose(gx.numpy(), x.grad.numpy(), rtol=1e-12)
