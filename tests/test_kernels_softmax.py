"""Softmax, log-softmax (forward and backward) and the fused cross-entropy, against NumPy.

References are computed in float64 from the same inputs. Tolerances: float32 softmax within
2e-6 relative (the issue's accuracy target, also on 100k-wide rows), float64 within 1e-13;
log-softmax within a few ulp of the row's magnitude (it is a difference of numbers of that size).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_lite import kernels as K

DTYPES = [np.float32, np.float64]
COLS = [1, 2, 3, 7, 16, 31, 97, 1000, 1024, 1025, 4099]
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

pytestmark = pytest.mark.usefixtures("c_kernels")


def rtol_for(dtype):
    return 2e-6 if dtype == np.float32 else 1e-13


def ref64(fn, *arrays):
    return fn(*(a.astype(np.float64) for a in arrays))


def assert_softmax_close(got, x):
    ref = ref64(K.reference_softmax, x)
    assert got.shape == x.shape and got.dtype == x.dtype
    np.testing.assert_allclose(got, ref, rtol=rtol_for(x.dtype), atol=1e-37)


def assert_log_softmax_close(got, x):
    ref = ref64(K.reference_log_softmax, x)
    assert got.shape == x.shape and got.dtype == x.dtype
    eps = np.finfo(x.dtype).eps
    # y = (x - max) - log(sum): each term is rounded at its own magnitude. The kernels compute
    # it as x - (max + log(sum)), whose sum is rounded at the magnitude of max: an element equal
    # to a max of 94 is off by ~eps * 94 (hypothesis found one 1.07x over the bound without it).
    x64 = x.astype(np.float64)
    row_max = x64.max(axis=-1, keepdims=True)
    scale = np.abs(x64 - row_max) + np.abs(ref) + np.abs(row_max) + 1.0
    assert np.all(np.abs(got - ref) <= 4 * eps * scale)


def make_input(rng, shape, dtype, scale, layout):
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    if layout == "contiguous" or len(shape) < 2:
        return x
    if layout == "sliced":  # rows evenly spaced, longer than the data: handled without a copy
        big = np.zeros(shape[:-1] + (shape[-1] + 5,), dtype=dtype)
        big[..., 3:3 + shape[-1]] = x
        return big[..., 3:3 + shape[-1]]
    if layout == "transposed":  # last axis not unit-stride: the bridge copies
        return np.ascontiguousarray(np.swapaxes(x, -1, -2)).swapaxes(-1, -2)
    if layout == "reversed":
        return np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    if layout == "gapped":  # leading dims that cannot share one row stride: the bridge copies
        big = np.zeros((shape[0] * 2,) + shape[1:], dtype=dtype)
        big[::2] = x
        return big[::2]
    raise AssertionError(layout)


LAYOUTS = ["contiguous", "sliced", "transposed", "reversed", "gapped"]
shapes = st.tuples(st.lists(st.sampled_from([1, 2, 3, 5]), max_size=2),
                   st.sampled_from(COLS)).map(lambda t: tuple(t[0]) + (t[1],))


@SETTINGS
@given(dtype=st.sampled_from(DTYPES), shape=shapes, scale=st.sampled_from([0.1, 1.0, 30.0, 1e4]),
       layout=st.sampled_from(LAYOUTS), threads=st.sampled_from([1, 2]),
       seed=st.integers(0, 2**32 - 1))
def test_softmax_and_log_softmax_match_numpy(dtype, shape, scale, layout, threads, seed):
    K.set_num_threads(threads)
    x = make_input(np.random.default_rng(seed), shape, dtype, scale, layout)
    assert_softmax_close(K.softmax(x), x)
    assert_log_softmax_close(K.log_softmax(x), x)


@SETTINGS
@given(dtype=st.sampled_from(DTYPES), shape=shapes, layout=st.sampled_from(LAYOUTS),
       threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**32 - 1))
def test_backward_kernels_match_numpy(dtype, shape, layout, threads, seed):
    K.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    x = make_input(rng, shape, dtype, 3.0, layout)
    dy = make_input(rng, shape, dtype, 1.0, layout)
    eps = np.finfo(dtype).eps
    n = shape[-1]

    y = K.softmax(x)
    got = K.softmax_backward(y, dy)
    ref = ref64(K.reference_softmax_backward, y, dy)
    # dx = y * (dy - <dy, y>): error of the dot product plus the rounding of each term.
    tol = 4 * eps * np.abs(y) * (np.abs(dy) + (np.abs(dy) * np.abs(y)).sum(-1, keepdims=True)
                                 + 1e-30) + 1e-37
    assert got.dtype == dtype and np.all(np.abs(got - ref) <= tol * (1 + np.log2(n)))

    ly = K.log_softmax(x)
    got = K.log_softmax_backward(ly, dy)
    ref = ref64(K.reference_log_softmax_backward, ly, dy)
    tol = 8 * eps * (np.abs(dy) + np.exp(ly.astype(np.float64)) *
                     np.abs(dy).sum(-1, keepdims=True)) + 1e-37
    assert got.dtype == dtype and np.all(np.abs(got - ref) <= tol * (1 + np.log2(n)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_inputs_stay_finite(dtype):
    x = np.array([[1e4, -1e4, 0.0, 1e4], [-1e4, -1e4, -1e4, -1e4],
                  [-np.inf, -np.inf, 3.0, -np.inf], [-np.inf, 0.0, -np.inf, -np.inf]], dtype)
    y = K.softmax(x)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, [[0.5, 0, 0, 0.5], [0.25] * 4, [0, 0, 1, 0], [0, 1, 0, 0]])
    ly = K.log_softmax(x)
    assert not np.any(np.isnan(ly))
    np.testing.assert_allclose(ly[:2], K.reference_log_softmax(x[:2].astype(np.float64)),
                               rtol=1e-6)
    assert ly[2, 2] == 0 and ly[2, 0] == -np.inf
    # A -inf row in its own chunk before the max (the online max must skip it safely).
    wide = np.full((1, 5000), -np.inf, dtype)
    wide[0, 4000:] = 1.0
    np.testing.assert_allclose(K.softmax(wide)[0, 4000:], 1 / 1000, rtol=1e-6)
    assert np.all(K.softmax(wide)[0, :4000] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_all_minus_inf_rows_match_numpy(dtype):
    x = np.array([[1.0, np.nan, 2.0], [-np.inf] * 3, [0.0, 1.0, 2.0]], dtype)
    with np.errstate(invalid="ignore"):
        for got, ref in [(K.softmax(x), K.reference_softmax(x)),
                         (K.log_softmax(x), K.reference_log_softmax(x))]:
            np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    # a NaN hiding in a chunk that is otherwise all -inf
    y = np.full((1, 3000), -np.inf, dtype)
    y[0, 5], y[0, 2500] = np.nan, 1.0
    assert np.all(np.isnan(K.softmax(y)))


def test_float32_softmax_on_100k_rows_is_accurate():
    """The issue's accuracy target: 2e-6 relative to a float64 reference on 100k-wide rows."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3, 100277)) * 4).astype(np.float32)
    y = K.softmax(x)
    ref = K.reference_softmax(x.astype(np.float64))
    assert np.max(np.abs(y - ref) / ref) < 2e-6
    np.testing.assert_allclose(y.astype(np.float64).sum(-1), 1.0, rtol=2e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_longer_than_the_chunk_table(dtype):
    """Rows over CHUNK * MAX_CHUNKS (262144) elements switch to longer chunks in softmax.c."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((2, 300007)) * 5).astype(dtype)
    x[1, 290000] = 60.0  # a late new maximum: every earlier chunk gets rescaled
    assert_softmax_close(K.softmax(x), x)
    assert_log_softmax_close(K.log_softmax(x), x)
    loss, grad = K.cross_entropy(x, np.array([5, 290000]))
    rloss, rgrad = K.reference_cross_entropy(x.astype(np.float64), np.array([5, 290000]))
    assert loss == pytest.approx(rloss, rel=1e-6)
    np.testing.assert_allclose(grad, rgrad, rtol=4 * rtol_for(dtype), atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_threads(dtype):
    x = np.random.default_rng(6).standard_normal((64, 2048)).astype(dtype)
    K.set_num_threads(1)
    one = K.softmax(x), K.log_softmax(x)
    K.set_num_threads(2)
    two = K.softmax(x), K.log_softmax(x)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vectorised_exp_accuracy(dtype):
    """The polynomial exp of softmax.c against NumPy's exp, over its whole range."""
    ffi, lib = K.runtime._ffi, K.runtime._lib
    lo, hi = (-87.3, 88.0) if dtype == np.float32 else (-708.3, 709.0)
    x = np.concatenate([np.linspace(lo, hi, 200001), np.linspace(-1, 1, 10001),
                        [0.0, -0.0, -1e-30, -np.inf]]).astype(dtype)
    y = np.empty_like(x)
    fn, ct = ((lib.tgl_vexp_f32, "float *") if dtype == np.float32 else
              (lib.tgl_vexp_f64, "double *"))
    fn(ffi.cast(ct, x.ctypes.data), ffi.cast(ct, y.ctypes.data), x.size)
    ref = np.exp(x.astype(np.float64))
    rel = np.abs(y - ref) / np.maximum(ref, np.finfo(dtype).tiny)
    assert rel.max() <= 3 * np.finfo(dtype).eps  # ~1-2 ulp
    # out of range: underflow to 0, overflow to inf, NaN stays NaN
    edge = np.array([-1e4, -200.0, 1e4, np.inf, np.nan], dtype)
    fn(ffi.cast(ct, edge.ctypes.data), ffi.cast(ct, y.ctypes.data), edge.size)
    assert y[0] == 0 and y[1] == (0 if dtype == np.float32 else y[1]) and np.isinf(y[2:4]).all()
    assert np.isnan(y[4])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log_output", [0, 1])
def test_fast_path_matches_c_reference_loop(dtype, log_output):
    ffi, lib = K.runtime._ffi, K.runtime._lib
    x = (np.random.default_rng(8).standard_normal((7, 3001)) * 10).astype(dtype)
    ref = np.empty_like(x)
    fn, ct = ((lib.tgl_softmax_reference_f32, "float *") if dtype == np.float32 else
              (lib.tgl_softmax_reference_f64, "double *"))
    fn(ffi.cast(ct, x.ctypes.data), ffi.cast(ct, ref.ctypes.data), 7, 3001, log_output)
    got = K.log_softmax(x) if log_output else K.softmax(x)
    np.testing.assert_allclose(got, ref, rtol=4 * rtol_for(dtype), atol=1e-6 if log_output else 0)


@pytest.mark.parametrize("shape", [(0,), (0, 5), (3, 0), (2, 0, 4)])
@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_empty_shapes(shape, backend):
    with K.use_backend(backend):
        x = np.zeros(shape, np.float32)
        for out in (K.softmax(x), K.log_softmax(x), K.softmax_backward(x, x),
                    K.log_softmax_backward(x, x)):
            assert out.shape == shape and out.dtype == np.float32


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_softmax_bad_input_errors(backend):
    with K.use_backend(backend):
        with pytest.raises(TypeError, match="float32 or float64, got int64"):
            K.softmax(np.ones((2, 3), np.int64))
        with pytest.raises(ValueError, match="0-d"):
            K.log_softmax(np.float64(1.0))
        with pytest.raises(ValueError, match=r"\(2, 3\) and \(3, 2\)"):
            K.softmax_backward(np.ones((2, 3)), np.ones((3, 2)))
        with pytest.raises(TypeError, match="same dtype"):
            K.log_softmax_backward(np.ones((2, 3)), np.ones((2, 3), np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_unaligned_and_byteswapped_inputs(dtype):
    rng = np.random.default_rng(12)
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(6 * 50 * itemsize + 1, dtype=np.uint8)
    x = np.frombuffer(raw.data, dtype=dtype, count=300, offset=1).reshape(6, 50)
    x[...] = rng.standard_normal((6, 50))
    assert not x.flags.aligned
    assert_softmax_close(K.softmax(x), x)
    assert_log_softmax_close(K.log_softmax(x), x)
    y = K.softmax(x.copy())
    np.testing.assert_allclose(K.softmax_backward(x, x), ref64(K.reference_softmax_backward, x, x),
                               rtol=1e-5, atol=1e-6)
    loss, grad = K.cross_entropy(x, np.arange(6))
    rloss, rgrad = K.reference_cross_entropy(x.astype(np.float64), np.arange(6))
    assert loss == pytest.approx(rloss, rel=1e-6)
    swapped = x.astype(np.dtype(dtype).newbyteorder())
    np.testing.assert_array_equal(K.softmax(swapped), K.softmax(x.copy()))
    assert y.dtype == dtype


def test_backends_agree():
    x = np.random.default_rng(9).standard_normal((4, 50))
    with K.use_backend("numpy"):
        ref = K.softmax(x), K.log_softmax(x), K.cross_entropy(x, np.arange(4))
    np.testing.assert_allclose(K.softmax(x), ref[0], rtol=1e-13)
    np.testing.assert_allclose(K.log_softmax(x), ref[1], rtol=1e-13)
    loss, grad = K.cross_entropy(x, np.arange(4))
    assert loss == pytest.approx(ref[2][0], rel=1e-13)
    np.testing.assert_allclose(grad, ref[2][1], rtol=1e-12, atol=1e-17)


# --------------------------------------------------------------------------------------------
# Fused cross-entropy
# --------------------------------------------------------------------------------------------

@SETTINGS
@given(dtype=st.sampled_from(DTYPES), n=st.sampled_from([1, 2, 5, 17, 40]),
       v=st.sampled_from([1, 2, 3, 7, 100, 1000, 5003]),
       scale=st.sampled_from([0.1, 1.0, 20.0, 1e4]),
       ignore_index=st.sampled_from([-100, -1, 0, 3]), ignore_frac=st.sampled_from([0, .3, 1]),
       target_dtype=st.sampled_from([np.int64, np.int32, np.uint16]),
       layout=st.sampled_from(["contiguous", "sliced", "transposed"]),
       compute_grad=st.booleans(), threads=st.sampled_from([1, 2]),
       seed=st.integers(0, 2**32 - 1))
def test_cross_entropy_matches_numpy(dtype, n, v, scale, ignore_index, ignore_frac, target_dtype,
                                     layout, compute_grad, threads, seed):
    K.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    logits = make_input(rng, (n, v), dtype, scale, layout)
    targets = rng.integers(0, v, n)
    ignored = rng.random(n) < ignore_frac
    if np.iinfo(target_dtype).min == 0 and ignore_index < 0:
        ignore_index = 3
    targets[ignored] = ignore_index
    targets = targets.astype(target_dtype)
    if np.any((targets != ignore_index) & (targets >= v)):  # ignore_index 3 may be a class...
        targets[targets >= v] = ignore_index                  # only where it is out of range
    loss, grad = K.cross_entropy(logits, targets, ignore_index, compute_grad)
    rloss, rgrad = K.reference_cross_entropy(logits.astype(np.float64), targets.astype(np.int64),
                                             ignore_index, True)
    assert isinstance(loss, float)
    if np.isnan(rloss):
        assert np.isnan(loss)
    else:
        eps = np.finfo(dtype).eps
        assert abs(loss - rloss) <= 8 * eps * (np.abs(logits).max() + abs(rloss) + 1)
    if not compute_grad:
        assert grad is None
        return
    assert grad.shape == (n, v) and grad.dtype == dtype
    # The target entry p_t - 1 carries the rounding of logsumexp, eps * |logit|, absolutely.
    atol = 4 * np.finfo(dtype).eps * (np.abs(logits).max() + 1) / max(1, (~ignored).sum())
    np.testing.assert_allclose(grad, rgrad, rtol=4 * rtol_for(dtype), atol=atol)
    assert np.all(grad[targets == ignore_index] == 0)


def test_cross_entropy_large_vocabulary():
    rng = np.random.default_rng(10)
    logits = (rng.standard_normal((16, 100277)) * 3).astype(np.float32)
    targets = rng.integers(0, 100277, 16)
    targets[3] = -100
    K.set_num_threads(2)
    loss, grad = K.cross_entropy(logits, targets)
    rloss, rgrad = K.reference_cross_entropy(logits.astype(np.float64), targets)
    assert loss == pytest.approx(rloss, rel=1e-6)
    np.testing.assert_allclose(grad, rgrad, rtol=2e-6, atol=1e-12)
    loss2, none = K.cross_entropy(logits, targets, compute_grad=False)
    assert none is None and loss2 == loss


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_extreme_logits(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, -np.inf, 5.0]], dtype)
    loss, grad = K.cross_entropy(logits, np.array([0, 0, 2]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx((0 + (2e4 + np.log(2)) + np.log1p(np.exp(-5.0))) / 3, rel=1e-6)
    np.testing.assert_allclose(grad[1], np.array([-1, 0.5, 0.5]) / 3, atol=1e-7)


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_cross_entropy_all_ignored_or_empty(backend):
    with K.use_backend(backend):
        loss, grad = K.cross_entropy(np.ones((3, 4), np.float32), np.full(3, -100))
        assert np.isnan(loss) and grad.shape == (3, 4) and np.all(grad == 0)
        loss, grad = K.cross_entropy(np.ones((0, 4)), np.zeros(0, np.int64))
        assert np.isnan(loss) and grad.shape == (0, 4)


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_cross_entropy_bad_input_errors(backend):
    with K.use_backend(backend):
        logits = np.zeros((3, 5), np.float32)
        for bad in (5, 7, -1, -101, 2**40):
            with pytest.raises(ValueError, match=rf"target {bad} \(row 1\).*5 classes"):
                K.cross_entropy(logits, np.array([0, bad, 1]))
        with pytest.raises(ValueError, match="out of range"):
            K.cross_entropy(np.zeros((2, 0)), np.array([0, 0]))
        with pytest.raises(TypeError, match="integer array.*float64"):
            K.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
        with pytest.raises(TypeError, match="integer array.*bool"):
            K.cross_entropy(logits, np.array([True, False, True]))
        with pytest.raises(ValueError, match=r"shape \(3,\).*got \(2,\)"):
            K.cross_entropy(logits, np.array([0, 1]))
        with pytest.raises(ValueError, match=r"shape \(3,\).*got \(3, 1\)"):
            K.cross_entropy(logits, np.zeros((3, 1), np.int64))
        with pytest.raises(ValueError, match="2-D"):
            K.cross_entropy(np.zeros((2, 3, 5)), np.zeros(2, np.int64))
        with pytest.raises(TypeError, match="float32 or float64, got int64"):
            K.cross_entropy(np.zeros((3, 5), np.int64), np.zeros(3, np.int64))
        with pytest.raises(TypeError, match="ignore_index"):
            K.cross_entropy(logits, np.zeros(3, np.int64), ignore_index=1.5)


@pytest.mark.parametrize("cols", [1, 17, 128, 2048, 4097, 100277])
def test_avx512_and_portable_paths_agree(cols):
    """softmax.c has a hand-written AVX-512 float32 path (a power-of-two shift instead of
    exp(x - max), streaming stores for large outputs); the portable C is what other CPUs run.
    Both must agree to the accuracy target, also with -inf, NaN, +-1e4 and rows large enough to
    stream (>= 4 MiB in total)."""
    lib = K.runtime._lib
    if lib.tgl_softmax_set_portable(0) != 2:
        pytest.skip("no AVX-512 on this CPU")
    rng = np.random.default_rng(cols)
    rows = max(3, (5 << 20) // (4 * cols)) if cols >= 2048 else 9
    x = (rng.standard_normal((rows, cols)) * 4).astype(np.float32)
    x[1, ::3] = -np.inf
    x[2] *= 2500.0  # beyond the power-of-two path's range: the exp(x - max) fallback
    if cols > 1:
        x[3, cols // 2] = np.nan
    dy = rng.standard_normal((rows, cols)).astype(np.float32)
    targets = rng.integers(0, cols, rows)
    outs = {}
    try:
        for portable in (1, 0):
            lib.tgl_softmax_set_portable(portable)
            with np.errstate(invalid="ignore"):
                y = K.softmax(x)
                outs[portable] = (y, K.log_softmax(x), K.softmax_backward(y, dy),
                                  K.cross_entropy(np.nan_to_num(x, nan=0.0), targets))
    finally:
        lib.tgl_softmax_set_portable(0)
    (p_y, p_ly, p_dx, (p_loss, p_g)), (a_y, a_ly, a_dx, (a_loss, a_g)) = outs[1], outs[0]
    np.testing.assert_array_equal(np.isnan(a_y), np.isnan(p_y))
    np.testing.assert_allclose(a_y, p_y, rtol=4e-6, atol=1e-37)
    np.testing.assert_array_equal(np.isnan(a_ly), np.isnan(p_ly))
    ok = np.isfinite(p_ly)
    np.testing.assert_array_equal(a_ly[~ok], p_ly[~ok])
    np.testing.assert_allclose(a_ly[ok], p_ly[ok], rtol=1e-6, atol=2e-6)
    # dx = y * (dy - <dy, y>): y's own difference plus the dot product's rounding, as in
    # test_backward_kernels_match_numpy.
    eps = np.finfo(np.float32).eps
    fin = np.isfinite(p_y).all(-1)
    tol = (4e-6 * np.abs(p_dx) + 4 * eps * np.abs(p_y) * (
        np.abs(dy) + (np.abs(dy) * np.abs(p_y)).sum(-1, keepdims=True)) * (1 + np.log2(cols))
        + 1e-37)
    assert np.all(np.abs(a_dx - p_dx)[fin] <= tol[fin])
    assert a_loss == pytest.approx(p_loss, rel=1e-6)
    np.testing.assert_allclose(a_g, p_g, rtol=4e-6, atol=1e-12)


def test_log_softmax_error_at_the_row_max_is_bounded_by_the_max():
    # The case hypothesis found: float64 rows of 4099 at scale 30, where the element equal to
    # the row max (94.3) is off by 1.03e-15 -- within eps * |max|, over eps * (|y| + 1).
    K.set_num_threads(1)
    x = make_input(np.random.default_rng(387115618), (3, 4099), np.float64, 30.0, "transposed")
    assert_log_softmax_close(K.log_softmax(x), x)
