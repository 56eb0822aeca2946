"""Property-based fuzzing of the kernel bridge's public functions.

Two properties, with hypothesis drawing shapes, dtypes, memory layouts (transposed, negative
and zero strides, sliced, non-native byte order, unaligned), NaN/Inf and wrong types:

* valid input (float32/float64 of fitting shapes, any layout, any values) gives the NumPy
  reference's result -- the same NaN and Inf positions, the numbers within a tolerance;
* anything at all gives either that result or a ValueError/TypeError/IndexError/RuntimeError
  whose message names the function -- never a crash, a hang or another exception.

Both run on the "c" backend (the bridge in front of C is what is fuzzed); the reference is the
module's own reference_* function, run on the same values.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinygrad_lite as tg
from tinygrad_lite import kernels as K

pytestmark = pytest.mark.usefixtures("c_kernels")

CLEAR_ERRORS = (ValueError, TypeError, IndexError, RuntimeError)
FLOATS = (np.float32, np.float64)
OTHER_DTYPES = (np.float16, np.int32, np.int64, np.uint8, np.bool_, np.complex64,
                np.longdouble)
SPECIALS = (np.nan, np.inf, -np.inf, 0.0, -0.0)


# -- strategies --------------------------------------------------------------------------------

@st.composite
def values(draw, shape, dtype):
    """An array of the shape and dtype: moderate numbers and, often, some NaN/Inf/±0."""
    data = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).uniform(-8, 8, shape)
    if draw(st.booleans()) and data.size:
        count = draw(st.integers(1, max(1, data.size // 3)))
        flat = data.reshape(-1)
        for _ in range(count):
            flat[draw(st.integers(0, data.size - 1))] = draw(st.sampled_from(SPECIALS))
    with np.errstate(invalid="ignore", over="ignore"):
        return data.astype(dtype)


@st.composite
def laid_out(draw, array):
    """The same values as ``array`` in another memory layout."""
    kind = draw(st.sampled_from(["contiguous", "fortran", "reversed", "strided", "byteswapped",
                                 "unaligned", "broadcast", "readonly"]))
    if kind == "fortran":
        return np.asfortranarray(array)
    if kind == "reversed" and array.ndim:  # negative strides
        axis = draw(st.integers(0, array.ndim - 1))
        index = [slice(None)] * array.ndim
        index[axis] = slice(None, None, -1)
        flipped = np.flip(array, axis).copy()
        return flipped[tuple(index)]
    if kind == "strided" and array.ndim:  # every other element of a bigger array
        big = np.zeros(tuple(2 * s for s in array.shape), dtype=array.dtype)
        view = big[tuple(slice(None, None, 2) for _ in array.shape)]
        view[...] = array
        return view
    if kind == "byteswapped" and array.dtype.itemsize > 1:
        return array.astype(array.dtype.newbyteorder())
    if kind == "unaligned" and array.size:
        raw = np.zeros(array.nbytes + 1, dtype=np.uint8)
        view = raw[1:].view(array.dtype).reshape(array.shape)
        view[...] = array
        return view
    if kind == "broadcast" and array.ndim and array.shape[0]:  # zero strides (rows repeat)
        return np.broadcast_to(array[:1], array.shape)
    if kind == "readonly":
        array = array.copy()
        array.flags.writeable = False
    return array


def shapes(min_dims=0, max_dims=3):
    return st.lists(st.integers(0, 5), min_size=min_dims, max_size=max_dims).map(tuple)


@st.composite
def float_array(draw, shape, dtype=None):
    dtype = dtype or draw(st.sampled_from(FLOATS))
    return draw(laid_out(draw(values(shape, dtype))))


@st.composite
def anything(draw, shape=None):
    """An argument of any kind: arrays of any dtype and layout, lists, None, Tensors, strs."""
    shape = shape if shape is not None else draw(shapes())
    kind = draw(st.sampled_from(["float", "float", "float", "other-dtype", "list", "none",
                                 "tensor", "str", "scalar", "ragged"]))
    if kind == "float":
        return draw(float_array(shape))
    if kind == "other-dtype":
        dtype = draw(st.sampled_from(OTHER_DTYPES))
        return draw(laid_out(draw(values(shape, dtype))))
    if kind == "list":
        return draw(values(shape, np.float64)).tolist()
    if kind == "tensor":
        return tg.Tensor(draw(values(shape, np.float32)))
    if kind == "str":
        return "abc"
    if kind == "scalar":
        return draw(st.sampled_from([1.5, 3, np.float32(2.0), True]))
    if kind == "ragged":
        return [[1.0, 2.0], [3.0]]
    return None


# -- comparing with the reference --------------------------------------------------------------

def assert_matches(got, ref, dtype, scale=1.0):
    """Same shape and dtype; NaN and ±Inf where the reference has them; numbers close."""
    ref = np.asarray(ref)
    dtype = native(dtype)  # the result is in native byte order, whatever the input's
    assert isinstance(got, np.ndarray) and got.shape == ref.shape, (type(got), ref.shape)
    assert got.dtype == dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(got[~finite & ~np.isnan(ref)], ref[~finite & ~np.isnan(ref)])
    tol = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got[finite], ref[finite], rtol=tol, atol=tol * scale)


def native(dtype) -> np.dtype:
    return np.dtype(dtype).newbyteorder("=")


def assert_loss_matches(loss, ref_loss, dtype):
    """A Python float, NaN exactly when the reference is, else close (to dtype's precision)."""
    assert isinstance(loss, float)
    assert np.isnan(loss) == np.isnan(ref_loss)
    if not np.isnan(ref_loss):
        tol = 2e-4 if native(dtype) == np.float32 else 1e-10
        assert loss == pytest.approx(ref_loss, rel=tol, abs=tol * 16)


def reference_on(*arrays):
    """The arrays as the reference sees them: float64 copies in plain layout."""
    return [np.array(a, dtype=np.float64) for a in arrays]


def check_clear_error(error: BaseException, function: str) -> None:
    assert isinstance(error, CLEAR_ERRORS), f"{type(error).__name__}: {error}"
    assert function in str(error), f"the message does not name {function}: {error}"


# -- matmul ------------------------------------------------------------------------------------

@st.composite
def matmul_operands(draw):
    m, k, n = (draw(st.one_of(st.integers(0, 6), st.sampled_from([17, 33]))) for _ in range(3))
    batch = draw(shapes(0, 2))
    b_batch = draw(st.sampled_from([batch, batch[-1:], (), tuple(1 for _ in batch)]))
    a_shape = draw(st.sampled_from([batch + (m, k), (k,)]))
    b_shape = draw(st.sampled_from([b_batch + (k, n), (k,)]))
    dtype = draw(st.sampled_from(FLOATS))
    return draw(float_array(a_shape, dtype)), draw(float_array(b_shape, dtype))


@settings(max_examples=80)
@given(matmul_operands())
def test_matmul_valid_input_matches_reference(operands):
    a, b = operands
    got = K.matmul(a, b)
    with np.errstate(all="ignore"):
        ref = K.reference_matmul(*reference_on(a, b))
    assert_matches(got, ref, a.dtype, scale=max(1, a.shape[-1]) * 64)


@settings(max_examples=80)
@given(anything(), anything())
def test_matmul_anything_is_right_or_a_clear_error(a, b):
    _right_or_clear("matmul", lambda: K.matmul(a, b), lambda x, y: K.reference_matmul(x, y),
                    a, b)


def _right_or_clear(function, call, reference, *args):
    try:
        got = call()
    except Exception as error:  # noqa: BLE001 - the property is about which errors
        check_clear_error(error, function)
        return
    # It returned: the inputs must have been valid float arrays of one dtype.
    arrays = [np.asarray(a) for a in args]
    assert all(native(a.dtype) == native(arrays[0].dtype) in FLOATS for a in arrays), \
        [a.dtype for a in arrays]
    with np.errstate(all="ignore"):
        ref = reference(*reference_on(*arrays))
    assert_matches(got, ref, arrays[0].dtype, scale=64 * max([1] + [a.size for a in arrays]))


# -- gemm --------------------------------------------------------------------------------------

@settings(max_examples=60)
@given(st.data())
def test_gemm_valid_and_invalid_input(data):
    m, k, n = (data.draw(st.integers(0, 6)) for _ in range(3))
    trans_a, trans_b = data.draw(st.booleans()), data.draw(st.booleans())
    dtype = data.draw(st.sampled_from(FLOATS))
    a = data.draw(float_array((k, m) if trans_a else (m, k), dtype))
    b = data.draw(float_array((n, k) if trans_b else (k, n), dtype))
    alpha = data.draw(st.sampled_from([1.0, -0.5, 0.0, 2]))
    beta = data.draw(st.sampled_from([0.0, 1.0, 0.5]))
    c0 = data.draw(values((m, n), dtype))
    c = c0.copy()
    got = K.gemm(a, b, c, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b)
    assert got is c
    x, y, c64 = reference_on(a, b, c0)
    with np.errstate(all="ignore"):
        product = K.reference_matmul(x.T if trans_a else x, y.T if trans_b else y)
        ref = alpha * product + beta * c64 if beta else alpha * product
        if alpha == 0:  # BLAS: alpha == 0 skips the product (NaN/Inf in a, b do not count)
            ref = beta * c64 if beta else np.zeros_like(c64)
    assert_matches(got, ref, dtype, scale=64 * max(1, k))
    bad = data.draw(st.sampled_from(["alpha", "beta", "c", "a"]))
    wrong = data.draw(st.sampled_from([None, "x", [1.0], np.ones(2), 1j]))
    kwargs = {"alpha": alpha, "beta": beta, "trans_a": trans_a, "trans_b": trans_b, "c": c}
    args = [a, b]
    if bad == "a":
        args[0] = wrong
    else:
        kwargs[bad] = wrong
    for function, fn in (("gemm", K.gemm), ("naive_gemm", K.naive_gemm)):
        try:
            fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001
            check_clear_error(error, function)


# -- softmax family ----------------------------------------------------------------------------

ROW_FUNCTIONS = [("softmax", K.softmax, K.reference_softmax),
                 ("log_softmax", K.log_softmax, K.reference_log_softmax)]
BACKWARD_FUNCTIONS = [("softmax_backward", K.softmax_backward, K.reference_softmax_backward),
                      ("log_softmax_backward", K.log_softmax_backward,
                       K.reference_log_softmax_backward)]


@pytest.mark.parametrize("name,function,reference", ROW_FUNCTIONS)
@settings(max_examples=60)
@given(data=st.data())
def test_row_forward_valid_input_matches_reference(name, function, reference, data):
    x = data.draw(float_array(data.draw(shapes(1, 3))))
    got = function(x)
    with np.errstate(all="ignore"):
        ref = reference(*reference_on(x)) if x.size else np.empty(x.shape)
    assert_matches(got, ref, x.dtype, scale=16)


@pytest.mark.parametrize("name,function,reference", BACKWARD_FUNCTIONS)
@settings(max_examples=60)
@given(data=st.data())
def test_row_backward_valid_input_matches_reference(name, function, reference, data):
    shape = data.draw(shapes(1, 3))
    dtype = data.draw(st.sampled_from(FLOATS))
    y, dy = data.draw(float_array(shape, dtype)), data.draw(float_array(shape, dtype))
    got = function(y, dy)
    with np.errstate(all="ignore"):
        ref = reference(*reference_on(y, dy)) if y.size else np.empty(shape)
    assert_matches(got, ref, dtype, scale=64 * 64)


@pytest.mark.parametrize("name,function,reference", ROW_FUNCTIONS + BACKWARD_FUNCTIONS)
@settings(max_examples=60)
@given(data=st.data())
def test_row_functions_anything_is_right_or_a_clear_error(name, function, reference, data):
    shape = data.draw(shapes())
    args = [data.draw(anything(shape))]
    if "backward" in name:
        args.append(data.draw(anything(data.draw(st.one_of(st.just(shape), shapes())))))

    def ref(*xs):
        return reference(*xs) if xs[0].size else np.empty(xs[0].shape)

    _right_or_clear(name, lambda: function(*args), ref, *args)


# -- cross-entropy -----------------------------------------------------------------------------

@st.composite
def targets_for(draw, n, v, ignore_index):
    choices = st.one_of(st.integers(0, max(0, v - 1)), st.just(ignore_index))
    return np.array([draw(choices) for _ in range(n)], dtype=np.int64)


def reference_loss(logits, targets, ignore_index, compute_grad):
    count = int((targets != ignore_index).sum())
    if count == 0:
        return float("nan"), np.zeros(logits.shape) if compute_grad else None
    with np.errstate(all="ignore"):
        return K.reference_cross_entropy(np.array(logits, dtype=np.float64), targets,
                                         ignore_index, compute_grad)


@settings(max_examples=80)
@given(st.data())
def test_cross_entropy_valid_input_matches_reference(data):
    n, v = data.draw(st.integers(0, 6)), data.draw(st.integers(1, 6))
    ignore_index = data.draw(st.sampled_from([-100, -1, 0, v - 1, 10**6]))
    logits = data.draw(float_array((n, v)))
    targets = data.draw(targets_for(n, v, ignore_index))
    fits = [t for t in (np.int64, np.int32, np.int16, np.uint8)
            if np.iinfo(t).min <= min(ignore_index, 0) and max(ignore_index, v) <= np.iinfo(t).max]
    targets = targets.astype(data.draw(st.sampled_from(fits)))
    compute_grad = data.draw(st.booleans())
    loss, grad = K.cross_entropy(logits, targets, ignore_index=ignore_index,
                                 compute_grad=compute_grad)
    ref_loss, ref_grad = reference_loss(logits, targets.astype(np.int64), ignore_index,
                                        compute_grad)
    assert_loss_matches(loss, ref_loss, logits.dtype)
    if compute_grad:
        assert_matches(grad, ref_grad, logits.dtype, scale=16)
    else:
        assert grad is None


@settings(max_examples=80)
@given(st.data())
def test_cross_entropy_anything_is_right_or_a_clear_error(data):
    n, v = data.draw(st.integers(0, 5)), data.draw(st.integers(0, 5))
    logits = data.draw(anything(data.draw(st.sampled_from([(n, v), (n,), (n, v, 2)]))))
    targets = data.draw(st.one_of(
        st.lists(st.integers(-2**70, 2**70), min_size=n, max_size=n).map(
            lambda t: np.array(t, dtype=object)),
        st.lists(st.integers(-150, v + 3), min_size=0, max_size=6).map(np.array),
        st.lists(st.integers(-3, v + 3), min_size=n, max_size=n).map(
            lambda t: np.array(t, dtype=np.int64)),
        st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n).map(
            lambda t: np.array(t, dtype=np.uint64)),
        anything((n,))))
    ignore_index = data.draw(st.sampled_from([-100, -1, 0, 2**70, -2**70, 1.5, None, True,
                                              np.int8(3), np.uint64(2**63)]))
    try:
        loss, grad = K.cross_entropy(logits, targets, ignore_index=ignore_index)
    except Exception as error:  # noqa: BLE001
        check_clear_error(error, "cross_entropy")
        return
    logits, targets = np.asarray(logits), np.asarray(targets)
    assert native(logits.dtype) in FLOATS and targets.dtype.kind in "iu"
    ref_loss, ref_grad = reference_loss(logits, targets.astype(np.int64), int(ignore_index),
                                        True)
    assert_loss_matches(loss, ref_loss, logits.dtype)
    assert_matches(grad, ref_grad, logits.dtype, scale=16)


# -- linear ------------------------------------------------------------------------------------

@settings(max_examples=60)
@given(st.data())
def test_linear_valid_and_anything(data):
    n, fin, fout = (data.draw(st.integers(0, 6)) for _ in range(3))
    dtype = data.draw(st.sampled_from(FLOATS))
    x = data.draw(float_array((n, fin), dtype))
    w = data.draw(float_array((fout, fin), dtype))
    b = data.draw(float_array((fout,), dtype))
    with np.errstate(all="ignore"):
        xx, ww, bb = reference_on(x, w, b)
        ref = K.reference_matmul(xx, ww.T) + bb
    assert_matches(K.linear(x, w, b), ref, dtype, scale=64 * max(1, fin))
    args = [x, w, b]
    args[data.draw(st.integers(0, 2))] = data.draw(anything())
    try:
        got = K.linear(*args)
    except Exception as error:  # noqa: BLE001
        check_clear_error(error, "linear")
        return
    arrays = [np.asarray(a) for a in args]
    assert all(native(a.dtype) == native(arrays[0].dtype) in FLOATS for a in arrays)
    with np.errstate(all="ignore"):
        xx, ww, bb = reference_on(*arrays)
        ref = K.reference_matmul(xx, ww.T) + bb
    assert_matches(got, ref, arrays[0].dtype, scale=64 * max(1, fin))


# -- matmul_lowp (bfloat16 / float16 inputs, float32 result) -----------------------------------

LOWP = (np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16))


@st.composite
def lowp_operands(draw):
    """a (batch..., m, k) and b (k, n) or (batch..., k, n) in one low-precision dtype, any
    layout (a byte-swapped bfloat16 is no bfloat16 any more: NumPy makes it raw bytes)."""
    m, k, n = (draw(st.one_of(st.integers(0, 6), st.sampled_from([17, 33]))) for _ in range(3))
    batch = draw(shapes(0, 2))
    dtype = draw(st.sampled_from(LOWP))
    a = draw(laid_out(draw(values(batch + (m, k), dtype))))
    b = draw(laid_out(draw(values(draw(st.sampled_from([batch, ()])) + (k, n), dtype))))
    assume(a.dtype.kind == "f" or a.dtype == LOWP[0])
    assume(b.dtype.kind == "f" or b.dtype == LOWP[0])
    return a, b


@settings(max_examples=80)
@given(lowp_operands(), st.booleans())
def test_matmul_lowp_valid_input_matches_reference(operands, with_bias):
    a, b = operands
    bias = np.linspace(-1, 1, b.shape[-1], dtype=np.float32) if with_bias else None
    got = K.matmul_lowp(a, b, bias=bias)
    with np.errstate(all="ignore"):
        ref = K.reference_matmul_lowp(a, b, bias=bias)
    assert_matches(got, ref, np.float32, scale=max(1, a.shape[-1]) * 64)


@settings(max_examples=80)
@given(st.data())
def test_matmul_lowp_anything_is_right_or_a_clear_error(data):
    a, b = data.draw(lowp_operands())
    args = [a, b]
    args[data.draw(st.integers(0, 1))] = data.draw(anything())
    try:
        got = K.matmul_lowp(*args)
    except Exception as error:  # noqa: BLE001 - the property is about which errors
        check_clear_error(error, "matmul_lowp")
        return
    x, y = args  # it returned: both were low-precision arrays of one dtype and fitting shapes
    assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray)
    assert native(x.dtype) == native(y.dtype) and native(x.dtype) in LOWP
    with np.errstate(all="ignore"):
        ref = K.reference_matmul_lowp(x, y)
    assert_matches(got, ref, np.float32, scale=64 * max(1, x.shape[-1]))


# -- settings functions ------------------------------------------------------------------------

@given(st.one_of(st.integers(-3, 0), st.floats(allow_nan=True), st.none(), st.text(max_size=3),
                 st.booleans(), st.just(np.float64(2.0)), st.just([2])))
def test_set_num_threads_rejects_non_positive_integers(n):
    with pytest.raises(ValueError, match="set_num_threads"):
        K.set_num_threads(n)


@given(st.one_of(st.text(max_size=6), st.none(), st.integers(), st.just(["c"])))
def test_set_backend_rejects_unknown_names(name):
    if name in ("c", "numpy"):
        return
    with pytest.raises((ValueError, TypeError), match="backend"):
        K.set_backend(name)
