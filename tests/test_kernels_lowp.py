"""kernels.matmul_lowp: the GEMM on bfloat16 / float16 inputs with float32 accumulation.

The C kernel widens the inputs to float32 while packing (exact) and runs the float32
micro-kernels, so its result must be *bitwise* the float32 GEMM's on the widened inputs, on the
same code path -- a stronger check than the issue's "relative error <= 1e-6 of |A||B|", which is
asserted too, against a float64 product (accumulation order is the only error source). The fast
path (AVX-512 or AVX2, whichever this CPU has) must also match the portable one to that
tolerance, on odd shapes and through strided / transposed operands.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from error_checks import raises
from tinygrad_lite import kernels as K
from tinygrad_lite.kernels import runtime

pytestmark = pytest.mark.usefixtures("c_kernels")

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
LOWP = [BF16, F16]
ODD_SHAPES = [(1, 1, 1), (1, 7, 33), (7, 33, 129), (33, 1, 7), (129, 129, 1), (15, 385, 31),
              (130, 77, 33), (200, 513, 70)]


def _operands(rng, m, k, n, dtype, trans_a=False, trans_b=False):
    """a (m, k) and b (k, n) in dtype, optionally as transposed views of contiguous arrays."""
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return (a.T if trans_a else a), (b.T if trans_b else b)


def _assert_accumulation_close(got, a, b, tol=1e-6):
    """|got - A·B| <= tol * (|A|·|B|) elementwise, A·B in float64 on the widened inputs: each
    product is exact in float32, so only the float32 sums' rounding (order) separates them.
    (The worst-case bound grows like k * 2^-24; on these random normal operands the measured
    ratio stays below 3e-7 for k up to 4096, so the issue's 1e-6 holds with room.)"""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    exact, scale = a64 @ b64, np.abs(a64) @ np.abs(b64)
    assert np.all(np.abs(got - exact) <= tol * scale), \
        float(np.max(np.abs(got - exact) / np.maximum(scale, 1e-300)))


@pytest.mark.parametrize("dtype", LOWP, ids=str)
@pytest.mark.parametrize("m,k,n", ODD_SHAPES)
def test_bitwise_equal_to_float32_gemm_on_widened_inputs(dtype, m, k, n):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    for trans_a in (False, True):
        for trans_b in (False, True):
            a, b = _operands(rng, m, k, n, dtype, trans_a, trans_b)
            got = K.matmul_lowp(a, b)
            assert got.dtype == np.float32 and got.shape == (m, n)
            want = K.matmul(a.astype(np.float32), b.astype(np.float32))
            np.testing.assert_array_equal(got, want)
            _assert_accumulation_close(got, a, b)


@pytest.mark.parametrize("dtype", LOWP, ids=str)
def test_fast_path_matches_portable_path(dtype):
    rng = np.random.default_rng(1)
    shapes = ODD_SHAPES + [(64, 400, 96), (300, 300, 300)]
    for m, k, n in shapes:
        a, b = _operands(rng, m, k, n, dtype, trans_b=(m % 2 == 1))
        fast = K.matmul_lowp(a, b)
        with K.force_portable_gemm():
            assert runtime._lib.tgl_gemm_lowp_path() == 0
            portable = K.matmul_lowp(a, b)
        _assert_accumulation_close(fast, a, b)
        _assert_accumulation_close(portable, a, b)
        scale = np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))
        assert np.all(np.abs(fast.astype(np.float64) - portable) <= 2e-6 * scale)


@pytest.mark.parametrize("dtype", LOWP, ids=str)
def test_strided_views_and_copies(dtype):
    """Operands the GEMM cannot read as they are (negative or non-unit strides) are copied;
    row-strided ones are read in place. Either way the result is the contiguous one's."""
    rng = np.random.default_rng(2)
    big_a = rng.standard_normal((40, 90)).astype(dtype)
    big_b = rng.standard_normal((90, 50)).astype(dtype)
    for a, b in [(big_a[::2, ::3], big_b[::3, ::2]),      # non-unit strides: copied
                 (big_a[:, 5:35], big_b[5:35, :]),          # row stride > cols: in place
                 (big_a[::-1, :30], big_b[:30, ::-1])]:     # negative strides: copied
        got = K.matmul_lowp(a, b)
        want = K.matmul_lowp(np.ascontiguousarray(a), np.ascontiguousarray(b))
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, K.matmul(a.astype(np.float32), b.astype(np.float32)))


@pytest.mark.parametrize("dtype", LOWP, ids=str)
def test_every_value_widens_exactly(dtype):
    """All 65536 bit patterns through the GEMM (a column times 1.0): the float32 NumPy gives,
    NaN for NaN -- on the fast and the portable path (the AVX-512 path widens in vector code,
    the others in C)."""
    bits = np.arange(1 << 16, dtype=np.uint16)
    a = bits.view(dtype).reshape(-1, 1)
    one = np.ones((1, 1), dtype)
    want = a.astype(np.float32)
    for portable in (False, True):
        with K.force_portable_gemm(portable):
            got = K.matmul_lowp(a, one)
        np.testing.assert_array_equal(got, want)  # NaN == NaN here


@pytest.mark.parametrize("dtype", LOWP, ids=str)
def test_bias_out_accumulate_and_out_dtype(dtype):
    rng = np.random.default_rng(3)
    a, b = _operands(rng, 17, 40, 23, dtype, trans_b=True)  # x @ w.T
    bias = rng.standard_normal(23).astype(np.float32)
    prod = K.matmul(a.astype(np.float32), b.astype(np.float32))
    np.testing.assert_allclose(K.matmul_lowp(a, b, bias=bias), prod + bias, rtol=1e-6,
                               atol=1e-6)
    out = np.full((17, 23), np.nan, np.float32)  # never read without accumulate
    assert K.matmul_lowp(a, b, out=out) is out
    np.testing.assert_array_equal(out, prod)
    start = rng.standard_normal((17, 23)).astype(np.float32)
    out = start.copy()
    K.matmul_lowp(a, b, bias=bias, out=out, accumulate=True)
    np.testing.assert_allclose(out, start + bias + prod, rtol=1e-5, atol=1e-5)
    rounded = K.matmul_lowp(a, b, out_dtype=dtype)
    assert rounded.dtype == dtype
    np.testing.assert_array_equal(rounded, prod.astype(dtype))


@pytest.mark.parametrize("dtype", LOWP, ids=str)
def test_batched_and_numpy_backend(dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 5, 24)).astype(dtype)   # (B, T, ..., C)
    w = rng.standard_normal((10, 24)).astype(dtype)        # a weight, read transposed
    y = rng.standard_normal((2, 3, 24, 6)).astype(dtype)   # same batch
    for a, b in [(x, w.T), (x[:, :, ::2], w.T), (x, y),
                 (x.swapaxes(-1, -2)[..., :4, :], y[..., :5, :])]:
        got = K.matmul_lowp(a, b)
        want = np.matmul(a.astype(np.float32), b.astype(np.float32))
        _assert_accumulation_close(got, a, b)
        with K.use_backend("numpy"):
            ref = K.matmul_lowp(a, b)
        np.testing.assert_array_equal(ref, want)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    empty = K.matmul_lowp(np.zeros((0, 4), dtype), np.zeros((4, 3), dtype))
    assert empty.shape == (0, 3)
    zero_k = K.matmul_lowp(np.zeros((2, 0), dtype), np.zeros((0, 3), dtype),
                           bias=np.ones(3, np.float32))
    np.testing.assert_array_equal(zero_k, np.ones((2, 3), np.float32))


def test_bad_input_gets_clear_errors():
    a = np.ones((4, 3), BF16)
    b = np.ones((3, 2), BF16)
    with raises(TypeError, "matmul_lowp", "a", "bfloat16", "float32"):
        K.matmul_lowp(np.ones((4, 3), np.float32), b)
    with raises(TypeError, "matmul_lowp", "same dtype", "float16"):
        K.matmul_lowp(a, np.ones((3, 2), np.float16))
    with raises(ValueError, "matmul_lowp", "inner dimensions", "3 != 4"):
        K.matmul_lowp(a, np.ones((4, 2), BF16))
    with raises(ValueError, "matmul_lowp", "at least 2 dimensions"):
        K.matmul_lowp(np.ones(3, BF16), b)
    with raises(ValueError, "matmul_lowp", "batch dimensions"):
        K.matmul_lowp(np.ones((2, 4, 3), BF16), np.ones((3, 3, 2), BF16))
    with raises(TypeError, "matmul_lowp", "bias", "float32", "(2,)"):
        K.matmul_lowp(a, b, bias=np.ones(3, np.float32))
    with raises(TypeError, "matmul_lowp", "bias"):
        K.matmul_lowp(a, b, bias=np.ones(2, np.float64))
    with raises(TypeError, "matmul_lowp", "out", "float32"):
        K.matmul_lowp(a, b, out=np.empty((4, 2), np.float64))
    with raises(ValueError, "matmul_lowp", "out", "(4, 2)"):
        K.matmul_lowp(a, b, out=np.empty((2, 4), np.float32))
    with raises(ValueError, "matmul_lowp", "C-contiguous"):
        K.matmul_lowp(a, b, out=np.empty((2, 4), np.float32).T)
    ro = np.empty((4, 2), np.float32)
    ro.flags.writeable = False
    with raises(ValueError, "matmul_lowp", "read-only"):
        K.matmul_lowp(a, b, out=ro)
    bias = np.zeros(8, np.float32)
    with raises(ValueError, "matmul_lowp", "overlaps"):
        K.matmul_lowp(a, b, bias=bias[:2], out=bias.reshape(4, 2))
    with raises(ValueError, "matmul_lowp", "accumulate", "out"):
        K.matmul_lowp(a, b, accumulate=True)
    with raises(TypeError, "matmul_lowp", "accumulate", "bool"):
        K.matmul_lowp(a, b, accumulate=1)
    with raises(TypeError, "matmul_lowp", "out_dtype", "float64"):
        K.matmul_lowp(a, b, out_dtype=np.float64)
    with raises(ValueError, "matmul_lowp", "out_dtype", "out"):
        K.matmul_lowp(a, b, out=np.empty((4, 2), np.float32), out_dtype=BF16)
    with raises(TypeError, "matmul_lowp", "b", "bfloat16"):
        K.matmul_lowp(a, [[1, 2], [3, 4], [5, 6]])
