"""The GEMM kernels and the bridge around them (tinygrad_lite/kernels/), against NumPy.

What is checked: matmul equals np.matmul (computed in float64) within the error a float
dot product of length k is allowed (|error| <= c * k * eps * (|A| @ |B|)), for both dtypes, all
transpose layouts, batch broadcasting, 1-D operands, sizes 0/1/odd/prime, and non-contiguous,
negative-stride, overlapping, unaligned and byte-swapped inputs; the low-level gemm/naive_gemm
with alpha/beta and their output checks; 2 threads on batched shapes; the forced-portable
micro-kernel; backend switching; thread settings; and the ImportError when _C is missing.

Every test here must pass with the naive gemm.c as with the fast one.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_lite
from tinygrad_lite import kernels as K
from tinygrad_lite.kernels import memory

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(tinygrad_lite.__file__)))
DTYPES = [np.float32, np.float64]
SIZES = [0, 1, 2, 3, 5, 7, 13, 16, 17, 31, 33, 64, 67]

pytestmark = pytest.mark.usefixtures("c_kernels")

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def assert_gemm_close(got, a, b, dtype):
    """got == a @ b within float rounding of a k-term dot product."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ref = np.matmul(a64, b64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    assert got.dtype == dtype
    k = a.shape[-1]
    eps = np.finfo(dtype).eps
    bound = 2 * (k + 2) * eps * np.matmul(np.abs(a64), np.abs(b64)) + np.finfo(dtype).tiny
    err = np.abs(got.astype(np.float64) - ref)
    assert np.all(err <= bound), f"max error {err.max()} exceeds bound {bound.max()}"


def make_matrix(rng, shape, dtype, layout):
    """An array of `shape` stored in one of several layouts (its values do not depend on it)."""
    x = rng.standard_normal(shape).astype(dtype)
    if layout == "contiguous":
        return x
    if layout == "transposed":  # the last two axes stored the other way round: a x.T-style view
        return np.ascontiguousarray(np.swapaxes(x, -1, -2)).swapaxes(-1, -2)
    if layout == "sliced":  # every second row/column of a bigger array
        big = np.zeros(shape[:-2] + (2 * shape[-2] + 1, shape[-1] + 3), dtype=dtype)
        big[..., 1::2, 2:2 + shape[-1]] = x
        return big[..., 1::2, 2:2 + shape[-1]]
    if layout == "reversed":  # negative strides: the kernel cannot take them, the bridge copies
        return np.ascontiguousarray(x[..., ::-1, ::-1])[..., ::-1, ::-1]
    raise AssertionError(layout)


LAYOUTS = ["contiguous", "transposed", "sliced", "reversed"]


# --------------------------------------------------------------------------------------------
# matmul
# --------------------------------------------------------------------------------------------

@SETTINGS
@given(dtype=st.sampled_from(DTYPES), m=st.sampled_from(SIZES), k=st.sampled_from(SIZES),
       n=st.sampled_from(SIZES), la=st.sampled_from(LAYOUTS), lb=st.sampled_from(LAYOUTS),
       seed=st.integers(0, 2**32 - 1))
def test_matmul_2d_matches_numpy(dtype, m, k, n, la, lb, seed):
    rng = np.random.default_rng(seed)
    a = make_matrix(rng, (m, k), dtype, la)
    b = make_matrix(rng, (k, n), dtype, lb)
    assert_gemm_close(K.matmul(a, b), a, b, dtype)


batch_dims = st.lists(st.sampled_from([1, 2, 3]), min_size=0, max_size=3)


@SETTINGS
@given(dtype=st.sampled_from(DTYPES), m=st.sampled_from([1, 3, 8, 17]),
       k=st.sampled_from([1, 4, 20, 33]), n=st.sampled_from([1, 5, 16, 31]),
       batch=batch_dims, data=st.data(), la=st.sampled_from(LAYOUTS),
       lb=st.sampled_from(LAYOUTS), threads=st.sampled_from([1, 2]),
       seed=st.integers(0, 2**32 - 1))
def test_matmul_batched_broadcasting(dtype, m, k, n, batch, data, la, lb, threads, seed):
    # Each operand gets the batch shape with some dims set to 1 (broadcast) or dropped.
    def operand_batch():
        dims = [data.draw(st.sampled_from([d, 1])) for d in batch]
        drop = data.draw(st.integers(0, len(dims)))
        return tuple(dims[drop:])

    K.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    a = make_matrix(rng, operand_batch() + (m, k), dtype, la)
    b = make_matrix(rng, operand_batch() + (k, n), dtype, lb)
    assert_gemm_close(K.matmul(a, b), a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_batched_gemm_two_threads(dtype, threads):
    """The tiny-GPT attention shape, and a broadcast one, at 1 and 2 threads (a nested-OpenMP
    bug in a batched GEMM shows up only with 2 threads)."""
    K.set_num_threads(threads)
    rng = np.random.default_rng(7)
    q = rng.standard_normal((8, 128, 20)).astype(dtype)
    kt = rng.standard_normal((8, 20, 128)).astype(dtype)
    assert_gemm_close(K.matmul(q, kt), q, kt, dtype)
    # Aᵀ·G and G·Bᵀ as the backward forms them: transposed views, no copies needed.
    g = rng.standard_normal((8, 128, 128)).astype(dtype)
    assert_gemm_close(K.matmul(q.swapaxes(-1, -2), g), q.swapaxes(-1, -2), g, dtype)
    assert_gemm_close(K.matmul(g, kt.swapaxes(-1, -2)), g, kt.swapaxes(-1, -2), dtype)
    w = rng.standard_normal((20, 96)).astype(dtype)  # one weight for the whole batch
    x = rng.standard_normal((2, 4, 128, 20)).astype(dtype)
    assert_gemm_close(K.matmul(x, w), x, w, dtype)
    y = rng.standard_normal((4, 1, 33, 20)).astype(dtype)  # broadcast in a middle dim
    z = rng.standard_normal((3, 20, 9)).astype(dtype)
    assert_gemm_close(K.matmul(y, z), y, z, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", [((5,), (5,)), ((5,), (5, 3)), ((4, 5), (5,)),
                                    ((2, 4, 5), (5,)), ((5,), (3, 5, 2)), ((1,), (1, 1))])
def test_matmul_1d_promotion(dtype, shapes):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(shapes[0]).astype(dtype)
    b = rng.standard_normal(shapes[1]).astype(dtype)
    got = K.matmul(a, b)
    assert got.shape == np.matmul(a, b).shape
    assert_gemm_close(got, a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_awkward_memory(dtype):
    """Inputs the kernel cannot read through strides are copied, with the same result."""
    rng = np.random.default_rng(2)
    base = rng.standard_normal((12, 10)).astype(dtype)
    b = rng.standard_normal((5, 7)).astype(dtype)
    cases = {
        "both strides non-unit": base[::2, ::2],
        "negative row stride": base[::-1, :5],
        "negative column stride": base[:, 4::-1],
        "overlapping rows (stride 0)": np.broadcast_to(base[0, :5], (6, 5)),
    }
    for name, a in cases.items():
        assert_gemm_close(K.matmul(a, b), a, b, dtype)
    # Unaligned: the data starts one byte into a buffer.
    raw = np.zeros(6 * 5 * np.dtype(dtype).itemsize + 1, dtype=np.uint8)
    una = np.frombuffer(raw.data, dtype=dtype, count=30, offset=1).reshape(6, 5)
    una[...] = rng.standard_normal((6, 5))
    assert not una.flags.aligned
    assert_gemm_close(K.matmul(una, b), una, b, dtype)
    # Non-native byte order.
    swapped = base[:6, :5].astype(np.dtype(dtype).newbyteorder())
    assert_gemm_close(K.matmul(swapped, b), base[:6, :5], b, dtype)
    # Negative batch stride.
    x = rng.standard_normal((3, 4, 5)).astype(dtype)[::-1]
    assert_gemm_close(K.matmul(x, b), x, b, dtype)


@pytest.mark.parametrize("sa,sb", [((0, 3), (3, 4)), ((3, 0), (0, 4)), ((3, 4), (4, 0)),
                                   ((0, 2, 3), (3, 4)), ((2, 3, 0), (2, 0, 5)), ((0,), (0,))])
def test_matmul_empty_sizes(sa, sb):
    a, b = np.ones(sa, np.float32), np.ones(sb, np.float32)
    got, ref = K.matmul(a, b), np.matmul(a, b)
    assert got.shape == np.shape(ref) and got.dtype == np.float32
    np.testing.assert_array_equal(got, ref)  # k = 0: all zeros


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_matmul_bad_input_errors(backend):
    with K.use_backend(backend):
        f32, f64 = np.ones((2, 3), np.float32), np.ones((3, 2), np.float64)
        with pytest.raises(TypeError, match="same dtype.*float32.*float64"):
            K.matmul(f32, f64)
        with pytest.raises(TypeError, match="float32 or float64, got int64"):
            K.matmul(np.ones((2, 3), np.int64), np.ones((3, 2), np.int64))
        with pytest.raises(TypeError, match="float16"):
            K.matmul(np.ones((2, 3), np.float16), np.ones((3, 2), np.float16))
        with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 2\)"):
            K.matmul(f32, np.ones((4, 2), np.float32))
        with pytest.raises(ValueError, match="do not broadcast"):
            K.matmul(np.ones((2, 2, 3), np.float32), np.ones((3, 3, 2), np.float32))
        with pytest.raises(ValueError, match="at least one dimension"):
            K.matmul(np.float32(2.0), f32)


# --------------------------------------------------------------------------------------------
# Low-level gemm / naive_gemm
# --------------------------------------------------------------------------------------------

@SETTINGS
@given(dtype=st.sampled_from(DTYPES), m=st.sampled_from(SIZES), k=st.sampled_from(SIZES),
       n=st.sampled_from(SIZES), ta=st.booleans(), tb=st.booleans(),
       alpha=st.sampled_from([1.0, -0.5, 2.0]), beta=st.sampled_from([0.0, 1.0, 0.25]),
       naive=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_gemm_alpha_beta_trans(dtype, m, k, n, ta, tb, alpha, beta, naive, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    c = c0.copy()
    fn = K.naive_gemm if naive else K.gemm
    out = fn(a, b, c, alpha=alpha, beta=beta, trans_a=ta, trans_b=tb)
    assert out is c
    opa, opb = (a.T if ta else a), (b.T if tb else b)
    ref = alpha * (opa.astype(np.float64) @ opb.astype(np.float64)) + beta * c0
    eps = np.finfo(dtype).eps
    bound = (2 * (k + 3) * eps * (abs(alpha) * (np.abs(opa) @ np.abs(opb)).astype(np.float64)
                                  + abs(beta) * np.abs(c0)) + np.finfo(dtype).tiny)
    assert np.all(np.abs(out - ref) <= bound)


def test_gemm_beta_zero_ignores_garbage_in_c():
    a = np.ones((3, 4), np.float32)
    c = np.full((3, 5), np.nan, np.float32)
    K.gemm(a, np.ones((4, 5), np.float32), c, beta=0.0)
    np.testing.assert_array_equal(c, 4.0)


def test_gemm_output_checks():
    a, b = np.ones((3, 4), np.float64), np.ones((4, 3), np.float64)
    with pytest.raises(ValueError, match="overlaps an input"):
        K.gemm(a[:, :3], b[:3], a[:, :3])
    square = np.ones((4, 4), np.float64)
    with pytest.raises(ValueError, match="overlaps an input"):
        K.gemm(square, square.copy(), square)
    with pytest.raises(ValueError, match="row-major"):
        K.gemm(a, b, np.zeros((3, 3)).T)
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        K.gemm(a, b, np.zeros((3, 4)))
    with pytest.raises(TypeError, match="dtype float64"):
        K.gemm(a, b, np.zeros((3, 3), np.float32))
    ro = np.zeros((3, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        K.gemm(a, b, ro)
    with pytest.raises(ValueError, match="inner dimensions differ"):
        K.gemm(a, b, trans_a=True)
    with pytest.raises(ValueError, match="2-D"):
        K.gemm(np.ones((2, 3, 4)), b)


# --------------------------------------------------------------------------------------------
# Code paths, threads, backends
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_forced_portable_gemm(dtype):
    native = K.gemm_path()
    assert native in ("avx512", "avx2", "portable")
    rng = np.random.default_rng(3)
    a = rng.standard_normal((70, 45)).astype(dtype)
    b = rng.standard_normal((45, 53)).astype(dtype)
    with K.force_portable_gemm():
        assert K.gemm_path() == "portable"
        assert_gemm_close(K.matmul(a, b), a, b, dtype)
        assert_gemm_close(K.matmul(a.T.copy().T, b.T.copy().T), a, b, dtype)
        K.set_num_threads(2)
        x = rng.standard_normal((4, 33, 45)).astype(dtype)
        assert_gemm_close(K.matmul(x, b), x, b, dtype)
    assert K.gemm_path() == native


def test_portable_env_switch():
    out = _run_python("import tinygrad_lite.kernels as K; print(K.gemm_path())",
                      TGL_GEMM_PORTABLE="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "portable"


@pytest.mark.parametrize("value,path", [("yes", "portable"), ("TRUE", "portable"),
                                        (" on ", "portable"), ("no", None), ("0", None),
                                        ("", None)])
def test_portable_env_switch_spellings(value, path):
    out = _run_python("import tinygrad_lite.kernels as K; print(K.gemm_path())",
                      TGL_GEMM_PORTABLE=value)
    assert out.returncode == 0, out.stderr
    native = K.gemm_path() if not K.runtime._portable_forced else out.stdout.strip()
    assert out.stdout.strip() == (path or native)


@pytest.mark.parametrize("name,value,accepted", [
    ("TGL_GEMM_PORTABLE", "ye", "1, true, yes, on, 0, false, no, off"),
    ("TGL_GEMM_PORTABLE", "2", "1, true, yes, on, 0, false, no, off"),
    ("TGL_BACKEND", "cuda", "c, numpy"),
    ("TGL_NUM_THREADS", "0", "a positive integer"),
    ("TGL_NUM_THREADS", "1.5", "a positive integer"),
    ("TGL_NUM_THREADS", "-2", "a positive integer"),
])
def test_invalid_environment_variable_is_an_error(name, value, accepted):
    out = _run_python("import tinygrad_lite", **{name: value})
    assert out.returncode != 0
    assert "ValueError" in out.stderr
    assert f"{name}={value!r} is not valid" in out.stderr and accepted in out.stderr


def test_backends_agree_and_switch():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 6, 7))
    b = rng.standard_normal((7, 2))
    with K.use_backend("numpy"):
        assert K.get_backend() == "numpy"
        ref = K.matmul(a, b)
    assert K.get_backend() == "c"
    np.testing.assert_allclose(K.matmul(a, b), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="backend must be one of"):
        K.set_backend("cuda")


def test_thread_settings():
    with pytest.raises(ValueError, match="positive integer"):
        K.set_num_threads(0)
    with pytest.raises(ValueError, match="positive integer"):
        K.set_num_threads(1.5)
    K.set_num_threads(3)
    assert K.get_num_threads() == 3
    out = _run_python("import tinygrad_lite.kernels as K; print(K.get_num_threads())",
                      TGL_NUM_THREADS="5", TGL_BACKEND="numpy")
    assert out.stdout.strip() == "5", out.stderr
    out = _run_python("import tinygrad_lite.kernels", TGL_NUM_THREADS="many",
                      TGL_BACKEND="numpy")
    assert out.returncode != 0 and "TGL_NUM_THREADS='many' is not valid" in out.stderr
    out = _run_python("import os, tinygrad_lite.kernels as K;"
                      "print(K.get_num_threads() == len(os.sched_getaffinity(0)))",
                      TGL_BACKEND="numpy")
    assert out.stdout.strip() == "True", out.stderr


# --------------------------------------------------------------------------------------------
# The missing-module error
# --------------------------------------------------------------------------------------------

_BLOCK_C = textwrap.dedent("""
    import sys
    class HideC:  # makes `tinygrad_lite._C` unimportable, as if it had never been built
        def find_spec(self, name, path=None, target=None):
            if name == "tinygrad_lite._C":
                raise ModuleNotFoundError("No module named 'tinygrad_lite._C'")
            return None
    sys.meta_path.insert(0, HideC())
""")


def _run_python(code: str, **env):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TGL_")}
    # The same tinygrad_lite as this test run (installed or checkout), not the working
    # directory's copy: run from a neutral folder with the package's parent on the path.
    full_env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, cwd=tempfile.gettempdir(), timeout=120)


def test_missing_c_module_error_says_how_to_fix():
    out = _run_python(_BLOCK_C + "import tinygrad_lite")
    assert out.returncode != 0
    assert "ImportError" in out.stderr
    assert "C kernels of tinygrad_lite are not built" in out.stderr
    assert "pip install -e ." in out.stderr
    assert "TGL_BACKEND=numpy" in out.stderr


def test_missing_c_module_numpy_backend_is_explicit():
    code = _BLOCK_C + textwrap.dedent("""
        import numpy as np
        import tinygrad_lite.kernels as K
        assert K.get_backend() == "numpy" and not K.c_available()
        print(K.matmul(np.ones((2, 3)), np.ones((3, 1))).ravel().tolist())
        try:
            K.set_backend("c")
        except ImportError as e:
            print("refused:", "pip install -e ." in str(e))
    """)
    out = _run_python(code, TGL_BACKEND="numpy")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[3.0, 3.0]", "refused: True"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,fin,fout", [(1, 1, 1), (7, 5, 3), (256, 80, 321), (0, 4, 2)])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_linear_matches_numpy(dtype, n, fin, fout, layout):
    rng = np.random.default_rng(n + fin + fout)
    x = make_matrix(rng, (n, fin), dtype, layout)
    w = make_matrix(rng, (fout, fin), dtype, layout)
    b = rng.standard_normal(fout).astype(dtype)
    got = K.linear(x, w, b)
    ref = x.astype(np.float64) @ w.T.astype(np.float64) + b
    assert got.shape == (n, fout) and got.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * fin)


def test_linear_bad_input_errors():
    x, w, b = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32), np.ones(4, np.float32)
    with pytest.raises(ValueError, match=r"\(2, 3\), \(4, 2\) and \(4,\)"):
        K.linear(x, np.ones((4, 2), np.float32), b)
    with pytest.raises(TypeError, match="same dtype"):
        K.linear(x, w, b.astype(np.float64))


# --------------------------------------------------------------------------------------------
# Large outputs reuse memory (kernels/memory.py: _empty)
# --------------------------------------------------------------------------------------------

def test_large_outputs_reuse_memory_only_when_no_view_is_left():
    K.empty_cache()
    n = memory._REUSE_MIN_BYTES // 4 + 1000  # just over the threshold, as float32
    x = np.random.default_rng(3).standard_normal((4, n // 4)).astype(np.float32)
    y = K.softmax(x)
    assert y.shape == x.shape and y.dtype == x.dtype and y.flags.writeable
    address = y.ctypes.data
    del y
    y2 = K.softmax(x)
    assert y2.ctypes.data == address  # the memory came back and was reused
    keep = y2[1:, ::2]  # a view keeps the memory in use even when y2 itself is gone
    saved = keep.copy()
    del y2
    y3 = K.log_softmax(x)
    assert not np.shares_memory(y3, keep)
    np.testing.assert_array_equal(keep, saved)  # the view's values were not overwritten
    np.testing.assert_allclose(np.exp(y3), K.softmax(x), rtol=1e-5, atol=1e-12)
    del keep, y3
    assert memory._free_bytes > 0
    K.empty_cache()
    assert memory._free_bytes == 0 and not memory._free_maps


def test_small_outputs_are_plain_arrays():
    y = K.softmax(np.ones((3, 5), np.float32))
    assert y.flags.owndata  # below the threshold: an ordinary np.empty


def test_output_cache_is_bounded(monkeypatch):
    K.empty_cache()
    monkeypatch.setattr(memory, "_REUSE_CACHE_BYTES", 0)  # nothing may be kept
    x = np.ones((2, memory._REUSE_MIN_BYTES // 4), np.float32)
    y = K.softmax(x)
    assert not y.flags.owndata  # it did come from a memory map
    del y
    assert memory._free_bytes == 0 and not any(memory._free_maps.values())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_reused_output_memory_is_private_to_the_process():
    """Like malloc's memory: a forked child that writes to an output leaves the parent's alone."""
    y = K.softmax(np.zeros((2, memory._REUSE_MIN_BYTES // 4), np.float32))
    before = y.copy()
    pid = os.fork()
    if pid == 0:  # the child
        y[...] = 7.0
        os._exit(0)
    os.waitpid(pid, 0)
    np.testing.assert_array_equal(y, before)
