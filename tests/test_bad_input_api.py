"""Bad arguments to the factories, nn.functional and the optimizers (issue 9): each is refused
with a TypeError / ValueError / RuntimeError that names the function, the argument and the
value -- the rules the fuzz test (tests/test_fuzz_public_api.py) found missing, pinned here one
by one. The checkers live in tinygrad_lite/checks.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_lite as tg
from error_checks import raises
import tinygrad_lite.nn.functional as F
from tinygrad_lite import optim
from tinygrad_lite.checks import check_dim, check_dtype, check_flag, check_float, check_scalar, \
    check_shape
from tinygrad_lite.optim import lr_scheduler


# -- the shared checkers ------------------------------------------------------------------------

def test_check_shape_takes_torch_spellings_and_refuses_the_rest():
    assert check_shape("f", (2, 3)) == check_shape("f", ((2, 3),)) == check_shape("f", ([2, 3],))
    assert check_shape("f", ()) == ()
    assert check_shape("f", (np.int64(4),)) == (4,)
    for bad, exc in [((-2,), ValueError), ((2 ** 64,), ValueError), ((2.5,), TypeError),
                     (("a",), TypeError), ((None,), TypeError), ((True,), TypeError),
                     ((2 ** 40, 2 ** 40),  ValueError)]:
        with raises(exc, "f:", repr(bad[0])):
            check_shape("f", bad)


def test_check_dtype_refuses_what_a_tensor_cannot_hold():
    assert check_dtype("f", "float64") == np.float64
    assert check_dtype("f", tg.long) == np.int64
    for bad in ["float99", 5, object(), np.complex128, np.object_, None, str]:
        with raises(TypeError, "f: invalid dtype="):
            check_dtype("f", bad)


def test_arange_refuses_a_step_too_small_for_memory_naming_arange():
    with raises(RuntimeError, "arange: cannot allocate", "step=-2.6e-16"):
        tg.arange(-4, step=-2.6e-16)  # 1.5e16 elements: a valid size, but 54 PiB


def test_softplus_refuses_a_beta_that_is_zero_in_the_tensors_dtype():
    x = tg.tensor([-1.0, 0.0, 2.0])
    with raises(ValueError, "softplus: beta must be a finite number other than 0", "float32"):
        F.softplus(x, beta=3.7e-173)  # 0 in float32: log(2) / 0
    assert np.isfinite(F.softplus(x.double(), beta=3.7e-173).numpy()).all()  # not 0 in float64


def test_check_scalar_passes_any_real_operand_unchanged_and_refuses_the_rest():
    for good in [2, -1.5, math.nan, math.inf, True, np.float32(0.5), np.int64(3)]:
        assert check_scalar("f", "alpha", good) is good
    for bad in ["1", None, 1j, [1.0], np.ones(2)]:
        with raises(TypeError, "f: invalid alpha=", "real number"):
            check_scalar("f", "alpha", bad)


def test_check_flag_and_check_float_name_the_function_the_argument_and_the_value():
    assert check_flag("f", "keepdim", np.bool_(True)) is True
    with raises(TypeError, "f: invalid keepdim='no'", "True or False"):
        check_flag("f", "keepdim", "no")
    with raises(TypeError, "f: input must be a floating-point tensor", "int64"):
        check_float("f", "input", tg.tensor([1, 2]))


def test_check_dim_counts_from_the_end_and_gives_a_0d_tensor_dims_0_and_minus_1():
    assert [check_dim("f", d, 3) for d in (0, 2, -1, -3)] == [0, 2, 2, 0]
    assert check_dim("f", -1, 0) == 0
    with raises(IndexError, "f(): Dimension out of range", "[-3, 2]", "dim=3 with 3 dimension"):
        check_dim("f", 3, 3)
    with raises(TypeError, "f(): start_dim must be an int", "1.0"):
        check_dim("f", 1.0, 3, "start_dim")
    with raises(IndexError, "transpose", "dim1=7"):
        tg.ones(2, 3).transpose(0, 7)


@pytest.mark.parametrize("call, words", [
    (lambda x: x.sum(keepdim="yes"), ["sum", "keepdim", "'yes'"]),
    (lambda x: x.backward(retain_graph=1), ["backward", "retain_graph", "1"]),
    (lambda x: x.requires_grad_("no"), ["requires_grad_", "requires_grad", "'no'"]),
    (lambda x: x.add_(1.0, alpha="2"), ["add_", "alpha", "'2'"]),
    (lambda x: x.clip(min="0"), ["clip", "min", "'0'"]),
    (lambda x: x.leaky_relu(None), ["leaky_relu", "negative_slope", "None"]),
    (lambda x: x.to("float99"), ["to", "dtype", "'float99'"]),
    (lambda x: x.astype(np.complex64), ["astype", "dtype", "complex64"]),
])
def test_tensor_methods_use_the_shared_checks(call, words):
    x = tg.tensor([1.0, 2.0])
    with raises(TypeError, *words):
        call(x)


# -- factories ----------------------------------------------------------------------------------

@pytest.mark.parametrize("call, exc, words", [
    (lambda: tg.zeros(-2), ValueError, ["zeros", "-2"]),
    (lambda: tg.ones(2 ** 64), ValueError, ["ones", str(2 ** 64)]),
    (lambda: tg.rand(2.5), TypeError, ["rand", "2.5"]),
    (lambda: tg.randn("a"), TypeError, ["randn", "'a'"]),
    (lambda: tg.full([1, "a"], 0), TypeError, ["full", "'a'"]),
    (lambda: tg.full((2,), 1j), TypeError, ["full", "fill_value", "1j"]),
    (lambda: tg.full((2,), math.nan, dtype=tg.int64), RuntimeError, ["full", "nan", "int64"]),
    (lambda: tg.full((2,), 300, dtype=tg.uint8), RuntimeError, ["full", "300", "uint8"]),
    (lambda: tg.zeros(2, dtype="float99"), TypeError, ["zeros", "float99"]),
    (lambda: tg.eye(2, dtype=np.complex128), TypeError, ["eye", "complex"]),
    (lambda: tg.eye("2"), TypeError, ["eye", "n='2'"]),
    (lambda: tg.eye(-1), ValueError, ["eye", "n=-1"]),
    (lambda: tg.eye(2, 2.5), TypeError, ["eye", "m=2.5"]),
    (lambda: tg.rand(2, dtype=tg.int64), TypeError, ["rand", "floating-point"]),
    (lambda: tg.zeros(2, requires_grad="no"), TypeError, ["zeros", "requires_grad='no'"]),
    (lambda: tg.ones(2, dtype=tg.int64, requires_grad=True), RuntimeError,
     ["ones", "floating point", "int64"]),
    (lambda: tg.zeros_like("abc"), TypeError, ["zeros_like", "Tensor", "str"]),
    (lambda: tg.ones_like(tg.ones(2), dtype=5), TypeError, ["ones_like", "dtype=5"]),
    (lambda: tg.manual_seed(-2 ** 63 - 1), ValueError, ["manual_seed", str(-2 ** 63 - 1)]),
    (lambda: tg.manual_seed(2 ** 64), ValueError, ["manual_seed", str(2 ** 64)]),
    (lambda: tg.manual_seed("1"), TypeError, ["manual_seed", "seed='1'"]),
    (lambda: tg.manual_seed(None), TypeError, ["manual_seed", "seed=None"]),
    (lambda: tg.randint(0, 5, (2,), dtype="float99"), TypeError, ["randint", "float99"]),
    (lambda: tg.randint(2.5, (2,)), TypeError, ["randint", "high=2.5"]),
    (lambda: tg.randint(5, (2,), generator="abc"), TypeError, ["randint", "generator"]),
    (lambda: tg.multinomial(tg.ones(3), 1, replacement="no"), TypeError,
     ["multinomial", "replacement='no'"]),
])
def test_factories_name_the_function_and_the_argument(call, exc, words):
    with raises(exc, *words):
        call()


@pytest.mark.parametrize("args, words", [
    ((0, 5, 0), ["step must be nonzero"]),        # NumPy: ZeroDivisionError
    ((0.0, 1.0, 0.0), ["step must be nonzero"]),
    ((5, 0), ["inconsistent with step sign"]),      # NumPy: an empty range
    ((0, 5, -1), ["inconsistent with step sign"]),
    ((math.nan,), ["end=nan"]),
    ((0, math.inf), ["end=inf"]),
    ((1e30,), ["arange", "fit in memory"]),
])
def test_arange_refuses_what_torch_refuses(args, words):
    with raises(RuntimeError if "step" in words[0] else (ValueError, TypeError), "arange",
                 *words):
        tg.arange(*args)


def test_arange_type_errors_name_the_argument():
    with raises(TypeError, "arange", "step='a'"):
        tg.arange(0, 5, "a")
    with raises(TypeError, "arange", "end=None"):
        tg.arange(None)


def test_factories_still_make_what_they_made():
    np.testing.assert_array_equal(tg.arange(5).numpy(), np.arange(5))
    np.testing.assert_allclose(tg.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    assert tg.arange(0.0, 1.0).dtype == np.float32 and tg.arange(3).dtype == np.int64
    assert tg.arange(3, 3).shape == (0,)  # an empty range with the right sign is fine
    np.testing.assert_array_equal(tg.eye(2, 3).numpy(), np.eye(2, 3))
    assert tg.full(3, 7, dtype=tg.int64).tolist() == [7, 7, 7]
    assert tg.zeros((2, 0)).shape == (2, 0) and tg.ones([3]).shape == (3,)
    assert tg.zeros_like(tg.ones(2, dtype=tg.int32)).dtype == np.int32
    assert tg.randint(3, 5, (4,), dtype=None).dtype == np.int64  # None means the default
    t = tg.randint(0, 4, (3,), dtype=tg.float32, requires_grad=True)
    assert t.requires_grad and t.dtype == np.float32
    tg.manual_seed(2 ** 64 - 1)


def test_multinomial_of_no_rows_and_its_draws():
    assert tg.multinomial(tg.ones(0, 4), 2, replacement=True).shape == (0, 2)
    with raises(RuntimeError, "multinomial", "no categories"):
        tg.multinomial(tg.ones(0), 2, replacement=True)
    tg.manual_seed(0)
    draws = tg.multinomial(tg.tensor([0.0, 1.0, 3.0]), 4000, replacement=True).numpy()
    assert set(np.unique(draws)) == {1, 2}  # never the zero-probability category
    assert abs((draws == 2).mean() - 0.75) < 0.05


def test_manual_seed_remaps_a_negative_seed_as_torch():
    """torch.manual_seed(-1) is allowed: a negative seed means 0xffff_ffff_ffff_ffff + seed."""
    tg.manual_seed(-1)
    a = tg.rand(3).numpy()
    tg.manual_seed(0xffff_ffff_ffff_ffff - 1)
    np.testing.assert_array_equal(a, tg.rand(3).numpy())
    tg.manual_seed(-2 ** 63)
    tg.manual_seed(0)


# -- nn.functional --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "gelu", "leaky_relu", "softplus",
                                  "relu6", "hardswish", "silu", "mish", "softmax",
                                  "log_softmax", "dropout"])
def test_functional_refuses_a_non_tensor_with_a_type_error(name):
    with raises(TypeError, name, "Tensor", "str"):
        getattr(F, name)("abc")


def test_dropout_checks_its_arguments_on_every_path():
    x = tg.ones(3)
    with raises(TypeError, "dropout", "Tensor"):
        F.dropout("abc", training=False)  # the identity path checks too
    with raises(TypeError, "dropout", "p='0.5'"):
        F.dropout(x, p="0.5")
    with raises(ValueError, "dropout", "p=1.5"):
        F.dropout(x, p=1.5)
    with raises(TypeError, "dropout", "training='no'"):
        F.dropout(x, training="no")
    assert F.dropout(x, training=False) is x


def test_losses_name_themselves():
    x16 = tg.ones((2, 3), dtype=tg.float16)
    with raises(TypeError, "cross_entropy", "float16", ".float()"):
        F.cross_entropy(x16, np.array([0, 1]))
    with raises(TypeError, "linear", "float16"):
        F.linear(x16, x16)
    with raises(ValueError, "linear", "(3,)", "()"):
        F.linear(tg.ones(3), tg.tensor(2.0))
    with raises(ValueError, "linear", "bias"):
        F.linear(tg.ones(2, 3), tg.ones(4, 3), tg.ones(5))
    with raises(ValueError, "cross_entropy", "0-d"):
        F.cross_entropy(tg.tensor(1.0), np.array(0))
    with raises(TypeError, "nll_loss", "ignore_index=nan"):
        F.nll_loss(tg.ones(2, 3), np.array([0, 1]), ignore_index=math.nan)
    with raises(TypeError, "mse_loss", "target", "str"):
        F.mse_loss(tg.ones(2), "abc")
    with raises(TypeError, "mse_loss", "bool"):
        F.mse_loss(tg.tensor([True]), tg.tensor([False]))
    with raises(TypeError, "layer_norm", "None"):
        F.layer_norm(tg.ones(3), None)
    with raises(ValueError, "layer_norm", "normalized_shape"):
        F.layer_norm(tg.ones(3), ())
    with raises(TypeError, "embedding", "weight"):
        F.embedding(tg.tensor([0]), [[1.0]])
    with raises(TypeError, "softmax", "dim", "'0'"):
        F.softmax(tg.ones(3), dim="0")


def test_losses_over_nothing():
    """An empty batch: 'mean' is NaN (0/0) and 'sum' is 0, as in PyTorch; 3-D input with
    0 classes or 0 rows works too (its flatten used reshape(-1, 0), which is ambiguous)."""
    empty_targets = np.zeros(0, np.int64)
    assert math.isnan(F.cross_entropy(tg.zeros(0, 3), empty_targets).item())
    assert F.cross_entropy(tg.zeros(0, 3), empty_targets, reduction="sum").item() == 0.0
    assert math.isnan(F.nll_loss(tg.zeros(0, 3), empty_targets).item())
    out = F.nll_loss(tg.zeros(2, 0, 1), np.zeros((2, 1), np.int64), ignore_index=0,
                     reduction="none")
    assert out.shape == (2, 1) and out.tolist() == [[0.0], [0.0]]
    assert F.cross_entropy(tg.zeros(0, 3, 2), np.zeros((0, 2), np.int64),
                           reduction="sum").item() == 0.0
    for reduction, expected in [("mean", [math.nan]), ("sum", [0.0]), ("none", [0.0, 0.0])]:
        logits = tg.zeros(2, 0, requires_grad=True)  # no classes: every target is ignored
        out = F.cross_entropy(logits, np.array([-1, -1]), ignore_index=-1,
                              label_smoothing=0.1, reduction=reduction)
        np.testing.assert_array_equal(np.atleast_1d(out.numpy()), expected)
        out.sum().backward()
        assert logits.grad.shape == (2, 0)
    w = tg.ones(0, requires_grad=True)
    out = F.layer_norm(tg.zeros(2, 0), 0, weight=w)  # (NumPy's mean of nothing warned here)
    out.sum().backward()
    assert out.shape == (2, 0) and w.grad.shape == (0,)
    # the nll_loss of a 3-D input, against the definition
    logp = np.log(np.full((2, 3, 4), 1 / 3))
    target = np.array([[0, 1, 2, 0], [2, 2, 1, 0]])
    np.testing.assert_allclose(F.nll_loss(tg.tensor(logp), target).item(), math.log(3),
                               rtol=1e-6)


# -- optimizers and schedules ------------------------------------------------------------------

def _params():
    return [tg.zeros(2, requires_grad=True)]


@pytest.mark.parametrize("make, exc, words", [
    (lambda: optim.SGD(None), TypeError, ["SGD", "params", "NoneType"]),
    (lambda: optim.Adam(5), TypeError, ["Adam", "params", "int"]),
    (lambda: optim.SGD(_params(), dampening=math.inf), ValueError, ["SGD", "dampening=inf"]),
    (lambda: optim.SGD(_params(), lr="0.1"), TypeError, ["SGD", "lr='0.1'"]),
    (lambda: optim.Adam(_params(), lr=math.nan), ValueError, ["Adam", "lr=nan"]),
    (lambda: optim.AdamW(_params(), eps=math.nan), ValueError, ["AdamW", "eps=nan"]),
    (lambda: optim.Adam(_params(), betas="ab"), TypeError, ["Adam", "betas='ab'"]),
    (lambda: optim.RMSprop(_params(), alpha=1.5), ValueError, ["RMSprop", "alpha=1.5"]),
])
def test_optimizers_refuse_bad_hyperparameters(make, exc, words):
    with raises(exc, *words):
        make()


@pytest.mark.parametrize("make, exc, words", [
    (lambda o: lr_scheduler.StepLR(o, 2.5), TypeError, ["StepLR", "step_size=2.5"]),
    (lambda o: lr_scheduler.StepLR(o, math.nan), TypeError, ["StepLR", "step_size=nan"]),
    (lambda o: lr_scheduler.StepLR(o, 2, gamma=1j), TypeError, ["StepLR", "gamma=1j"]),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, 1, last_epoch=-2), ValueError,
     ["CosineAnnealingLR", "last_epoch=-2"]),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, 2.5), TypeError,
     ["CosineAnnealingLR", "T_max=2.5"]),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, min_lr=math.inf), ValueError,
     ["ReduceLROnPlateau", "min_lr=inf"]),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o, cooldown=2.5), TypeError,
     ["ReduceLROnPlateau", "cooldown=2.5"]),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o).step("abc"), TypeError,
     ["ReduceLROnPlateau.step", "'abc'"]),
    (lambda o: lr_scheduler.ReduceLROnPlateau(o).step(None), TypeError,
     ["ReduceLROnPlateau.step", "None"]),
])
def test_schedules_refuse_bad_settings(make, exc, words):
    with raises(exc, *words):
        make(optim.SGD(_params(), lr=0.1))


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.Adam(ps),
                                  lambda ps: optim.RMSprop(ps, centered=True, momentum=0.5)])
def test_a_step_with_nan_and_inf_gradients_is_silent(make, recwarn):
    """NaN/Inf gradients make NaN/Inf parameters without a NumPy warning, as in torch."""
    p = tg.zeros(3, requires_grad=True)
    opt = make([p])
    p.grad = tg.tensor([math.nan, math.inf, -math.inf])
    with np.errstate(all="warn"):
        opt.step()
        opt.step()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert not np.isfinite(p.numpy()).any()


def test_kernel_cross_entropy_compute_grad_must_be_a_bool():
    # a string "no" is truthy: it silently computed the gradient
    logits, targets = np.zeros((2, 3), np.float32), np.array([0, 1])
    with pytest.raises(TypeError, match="cross_entropy: invalid compute_grad='no'"):
        tg.kernels.cross_entropy(logits, targets, compute_grad="no")
    assert tg.kernels.cross_entropy(logits, targets, compute_grad=False)[1] is None


def test_int_tensor_divided_by_a_tiny_float_computes_in_float32():
    # as PyTorch: the number is converted to the default float32 too, so -9.9e-172 is -0
    out = tg.tensor([0, 3]) / -9.9e-172
    assert out.dtype == np.float32
    assert np.isnan(out.data[0]) and out.data[1] == -np.inf
