"""Bad input gives a clear error: the right exception type, and a message that names what a
learner needs to fix it (the op, the shapes, the offending value)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import assume, given

import tinygrad_lite as tg
from error_checks import raises
import tinygrad_lite.nn.functional as F
from tinygrad_lite import Tensor
from tinygrad_lite.testing import shapes


# --------------------------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------------------------

BINARY = {
    "Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b,
    "Div": lambda a, b: a / b, "Pow": lambda a, b: a ** b,
    "Maximum": lambda a, b: a.maximum(b), "Minimum": lambda a, b: a.minimum(b),
}


@pytest.mark.parametrize("op", list(BINARY))
def test_binary_shape_mismatch_names_op_and_both_shapes(op):
    a, b = tg.ones(2, 3, requires_grad=True), tg.ones(4, 5)
    with raises(ValueError, op, "(2, 3)", "(4, 5)", "broadcast"):
        BINARY[op](a, b)


@given(s1=shapes(min_dims=1, min_side=2), s2=shapes(min_dims=1, min_side=2))
def test_any_non_broadcastable_pair_is_reported(s1, s2):
    try:
        np.broadcast_shapes(s1, s2)
        assume(False)
    except ValueError:
        pass
    with raises(ValueError, "Add", str(s1), str(s2)):
        tg.zeros(s1) + tg.zeros(s2)


def test_comparison_and_where_shape_mismatch():
    with raises(ValueError, "<", "(2, 3)", "(4,)"):
        tg.ones(2, 3) < tg.ones(4)
    with raises(ValueError, "Where", "(2, 3)", "(4, 5)"):
        tg.where(tg.ones(2, 3) > 0, tg.ones(2, 3), tg.ones(4, 5))


@pytest.mark.parametrize("sa, sb, words", [
    ((2, 3), (4, 5), ["matmul", "(2, 3)", "(4, 5)", "3", "4"]),
    ((3,), (4,), ["matmul", "(3,)", "(4,)"]),
    ((5, 2, 3), (4, 3, 2), ["matmul", "batch", "(5, 2, 3)", "(4, 3, 2)"]),
    ((2, 3), (), ["matmul", "dimension"]),
])
def test_matmul_inner_dimension_mismatch(sa, sb, words):
    with raises(ValueError, *words):
        tg.ones(*sa) @ tg.ones(*sb)


def test_reshape_to_incompatible_shape():
    with raises(ValueError, "reshape", "(2, 3)", "6", "(4, 2)"):
        tg.ones(2, 3).reshape(4, 2)
    with raises(ValueError, "reshape", "(7,)"):
        tg.ones(2, 3).view(7)
    with raises(TypeError, "shape", "2.5"):
        tg.ones(2, 3).reshape(2.5, 2)


def test_expand_squeeze_permute_errors():
    with raises(ValueError, "expand", "(2, 3)", "(4, 3)"):
        tg.ones(2, 3).expand(4, 3)
    with raises(ValueError, "expand", "fewer dimensions"):
        tg.ones(2, 3).expand(3)
    assert tg.ones(2, 3).squeeze(0).shape == (2, 3)  # as torch: a dim of size != 1 stays
    with raises(ValueError, "permute", "(0, 0)"):
        tg.ones(2, 3).permute(0, 0)
    with raises(ValueError, "flatten"):
        tg.ones(2, 3).flatten(1, 0)


def test_join_and_split_errors():
    with raises(ValueError, "cat", "(4, 5)", "(2, 3)"):
        tg.cat([tg.ones(2, 3), tg.ones(4, 5)])
    with raises(ValueError, "cat", "at least one"):
        tg.cat([])
    with raises(ValueError, "cat", "zero-dimensional"):
        tg.cat([tg.tensor(1.0), tg.tensor(2.0)])
    with raises(ValueError, "stack", "(4, 5)", "(2, 3)"):
        tg.stack([tg.ones(2, 3), tg.ones(4, 5)])
    with raises(ValueError, "split", "add up", "3"):
        tg.ones(3).split([1, 1])
    with raises(ValueError, "split", "positive"):
        tg.ones(3).split(0)
    with raises(ValueError, "chunk", "positive"):
        tg.ones(3).chunk(0)


# --------------------------------------------------------------------------------------------
# axes
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "var", "std", "logsumexp",
                                "argmax", "argmin"])
@pytest.mark.parametrize("axis", [2, -3, 5])
def test_reduction_axis_out_of_range(op, axis):
    with raises(IndexError, op, "dim", str(axis), "out of range", "2 dimension"):  # as torch
        getattr(tg.ones(2, 3), op)(axis)


@pytest.mark.parametrize("axis", [1.0, "0", (0, "1")])
def test_reduction_axis_of_wrong_type(axis):
    with raises(TypeError, "sum", "dim", "int"):
        tg.ones(2, 3).sum(axis)


def test_repeated_axis():
    with raises(RuntimeError, "sum", "appears multiple times"):
        tg.ones(2, 3).sum((0, 0))
    with raises(RuntimeError, "sum", "appears multiple times"):
        tg.ones(2, 3).sum((0, -2))


@pytest.mark.parametrize("call", [
    lambda x: x.transpose(0, 4), lambda x: x.unsqueeze(5), lambda x: x.squeeze(3),
    lambda x: x.flatten(0, 9), lambda x: F.softmax(x, 3), lambda x: F.log_softmax(x, -3),
    lambda x: x.split(1, 2), lambda x: tg.cat([x, x], 2), lambda x: tg.stack([x, x], 4),
])
def test_dimension_out_of_range(call):
    with pytest.raises(IndexError, match=r"(dim|dimension|axis) -?\d+ is out of range|out of "
                                         r"range"):
        call(tg.ones(2, 3))


def test_empty_reductions_without_identity():
    for op in ("max", "min", "logsumexp", "argmax", "argmin"):
        with raises(ValueError, op, "empty", "(0, 3)"):
            getattr(tg.zeros(0, 3), op)()


# --------------------------------------------------------------------------------------------
# autograd misuse
# --------------------------------------------------------------------------------------------

def test_backward_on_a_non_scalar_without_gradient():
    y = tg.ones(3, requires_grad=True) * 2
    with raises(RuntimeError, "scalar", "(3,)", "gradient"):
        y.backward()


def test_backward_with_a_gradient_of_the_wrong_shape():
    y = tg.ones(3, requires_grad=True) * 2
    with raises(RuntimeError, "Mismatch in shape", "(4,)", "(3,)"):  # as in PyTorch
        y.backward(gradient=tg.ones(4))


def test_backward_of_a_tensor_without_graph():
    with raises(RuntimeError, "does not require grad"):
        tg.ones(3).sum().backward()


@pytest.mark.parametrize("make", [lambda: tg.tensor([1, 2], requires_grad=True),
                                  lambda: tg.arange(3).requires_grad_(),
                                  lambda: tg.tensor([True]).requires_grad_(),
                                  lambda: Tensor(np.zeros(2, np.int32), requires_grad=True),
                                  lambda: tg.zeros(2, dtype=np.int64, requires_grad=True)])
def test_requires_grad_on_an_integer_or_bool_tensor(make):
    with raises(RuntimeError, "only Tensors of floating point dtype can require gradients",
                ".float()"):  # RuntimeError, as in PyTorch
        make()


def test_grad_misuse():
    x = tg.ones(3, requires_grad=True)
    with raises(RuntimeError, "grad", "does not require grad"):
        tg.grad((x * 2).sum(), tg.ones(3))
    with raises(RuntimeError, "grad_outputs"):
        tg.grad([x * 2, x * 3], x, grad_outputs=[tg.ones(3)])


def test_hook_and_retain_grad_need_requires_grad():
    with raises(RuntimeError, "hook", "does not require grad"):
        tg.ones(2).register_hook(lambda g: g)
    with raises(RuntimeError, "retain_grad", "does not require grad"):
        tg.ones(2).retain_grad()


def test_version_error_message_explains_the_fix():
    x = tg.ones(2, requires_grad=True)
    c = tg.ones(2)
    y = (x * c).sum()
    c += 1
    with raises(RuntimeError, "Mul", "in-place", "(2,)", "clone"):
        y.backward()


def test_inplace_while_recording_message_explains_the_fix():
    x = tg.ones(2, requires_grad=True)
    with raises(RuntimeError, "+=", "in-place", "leaf", "no_grad"):
        x += 1


# --------------------------------------------------------------------------------------------
# construction and indexing
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data, exc, words", [
    (["a", "b"], TypeError, ["float, integer or bool", "<U1"]),
    (None, TypeError, ["float, integer or bool", "NoneType"]),
    ({"a": 1}, TypeError, ["dict"]),
    ([[1, 2], [3]], ValueError, ["cannot make a tensor", "list"]),
    ([1 + 2j], TypeError, ["complex"]),
])
def test_unsupported_data(data, exc, words):
    with raises(exc, *words):
        Tensor(data)


@pytest.mark.parametrize("index, type_name", [(1.5, "float"), ("x", "str"), (True, "bool"),
                                              ((0, 0.5), "float"), ({0}, "set")])
def test_unsupported_index_types(index, type_name):
    with raises(TypeError, "unsupported index", type_name):
        tg.ones(2, 3)[index]


def test_float_index_arrays_are_refused():
    with raises(TypeError, "integer or bool", "float"):
        tg.ones(2, 3)[np.array([0.0, 1.0])]
    with raises(TypeError, "integer or bool", "float32"):
        tg.ones(2, 3)[tg.tensor([0.0])]


@pytest.mark.parametrize("index, words", [
    (5, ["5", "(2, 3)", "out of"]), ((0, 7), ["7", "(2, 3)"]), ([0, 9], ["9", "(2, 3)"]),
    (-3, ["-3", "(2, 3)"]), ((0, 0, 0), ["(2, 3)"]),
])
def test_index_out_of_range(index, words):
    with raises(IndexError, *words):
        tg.ones(2, 3)[index]


def test_bool_mask_of_wrong_shape():
    with pytest.raises(IndexError):
        tg.ones(2, 3)[np.array([True, False, True])]


def test_setitem_errors():
    x = tg.ones(2, 3)
    with raises(ValueError, "(7,)", "(2, 3)"):
        x[0] = np.ones(7)
    with raises(TypeError, "unsupported index"):
        x[1.5] = 0.0


def test_item_len_bool_on_wrong_sizes():
    with raises(ValueError, "item()", "one element", "(2,)"):
        tg.ones(2).item()
    with raises(RuntimeError, "ambiguous", "(2,)"):
        bool(tg.ones(2))
    with raises(TypeError, "0-d"):
        len(tg.tensor(1.0))


def test_inplace_value_errors():
    x = tg.ones(2, 3)
    with raises(ValueError, "+=", "(2, 3)", "(4,)"):
        x += tg.ones(4)
    with raises(TypeError, "+=", "int64", "float"):
        i = tg.arange(3)
        i += 0.5
    with raises(ValueError, "copy_", "(5,)", "(2, 3)"):
        x.copy_(np.ones(5))


def test_dtype_errors():
    with raises(TypeError, "dtype"):
        tg.ones(2).to("U1")
    with raises(RuntimeError, "masked_fill", "boolean masks", "float32"):
        tg.ones(2).masked_fill(tg.ones(2), 0.0)  # RuntimeError, as in torch
    with raises(TypeError, "where", "bool"):
        tg.where(tg.ones(2), tg.ones(2), tg.ones(2))
    with raises(TypeError, "~", "bool"):
        ~tg.ones(2)


def test_option_errors():
    x = tg.ones(2, 3)
    with raises(ValueError, "clip", "min and max"):
        x.clip()
    with raises(ValueError, "gelu", "'fast'"):
        x.gelu("fast")
    with raises(TypeError, "transpose", "two dimensions"):
        x.transpose(0)


# --------------------------------------------------------------------------------------------
# nn.functional
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("targets, bad", [([0, 3], "3"), ([0, -1], "-1"), ([7, 0], "7")])
def test_cross_entropy_target_out_of_range(backend, targets, bad):
    with raises(IndexError, "cross_entropy", f"Target {bad}", "3 classes", "ignore_index"):
        F.cross_entropy(tg.ones(2, 3, requires_grad=True), np.array(targets))


def test_cross_entropy_other_errors(backend):
    logits = tg.ones(2, 3, requires_grad=True)
    with raises(TypeError, "cross_entropy", "integer", "float64"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with raises(ValueError, "cross_entropy", "(2, 3)", "(2,)", "(3,)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with raises(ValueError, "reduction", "'avg'"):
        F.cross_entropy(logits, np.array([0, 1]), reduction="avg")
    with raises(ValueError, "label_smoothing", "[0, 1]"):
        F.cross_entropy(logits, np.array([0, 1]), label_smoothing=1.5)
    with raises(TypeError, "cross_entropy", "floating-point"):
        F.cross_entropy(tg.arange(6).reshape(2, 3), np.array([0, 1]))
    with raises(ValueError, "cross_entropy", "(2, 3, 4)", "(2, 4)"):
        F.cross_entropy(tg.ones(2, 3, 4), np.zeros((2, 3), dtype=np.int64))


def test_softmax_errors(backend):
    with raises(TypeError, "softmax", "floating-point", "int64"):
        F.softmax(tg.arange(3))
    with raises(ValueError, "log_softmax", "0-d"):
        F.log_softmax(tg.tensor(1.0))


def test_mse_loss_errors():
    with raises(ValueError, "mse_loss", "(3,)", "(1, 3)"):
        F.mse_loss(tg.ones(3), tg.ones(1, 3))
    with raises(ValueError, "mse_loss", "reduction", "'avg'"):
        F.mse_loss(tg.ones(3), tg.ones(3), reduction="avg")


def test_embedding_errors():
    w = tg.ones(3, 2, requires_grad=True)
    with raises(IndexError, "embedding", "id 5", "3 embeddings"):
        F.embedding(np.array([0, 5]), w)
    with raises(IndexError, "embedding", "id -1"):
        F.embedding(np.array([-1]), w)
    with raises(TypeError, "embedding", "integers", "float64"):
        F.embedding(np.array([0.0]), w)
    with raises(ValueError, "embedding", "2-D", "(3,)"):
        F.embedding(np.array([0]), tg.ones(3))


def test_layer_norm_and_dropout_errors():
    with raises(ValueError, "layer_norm", "(4,)", "(2, 3)"):
        F.layer_norm(tg.ones(2, 3), 4)
    with raises(TypeError, "layer_norm", "floating-point"):
        F.layer_norm(tg.arange(3), 3)
    with raises(ValueError, "dropout", "[0, 1]", "1.5"):
        F.dropout(tg.ones(3), 1.5)
    with raises(ValueError, "dropout", "-0.1"):
        F.dropout(tg.ones(3), -0.1)


def test_error_messages_have_no_internal_jargon():
    """The messages a learner sees most often talk about their tensors, not NumPy internals."""
    messages = []
    for call in (lambda: tg.ones(2, 3) + tg.ones(4, 5), lambda: tg.ones(2, 3) @ tg.ones(4, 5),
                 lambda: tg.ones(2, 3).reshape(4, 2), lambda: tg.ones(2, 3)[1.5]):
        try:
            call()
        except (ValueError, TypeError) as e:
            messages.append(str(e))
    assert len(messages) == 4
    for m in messages:
        assert not re.search(r"operands could not be broadcast|ufunc|Traceback", m), m
