"""The kernels work in a forked child after the parent ran them on several threads.

GCC's OpenMP runtime is not fork-safe: without the at-fork handler in kernels/runtime.py a
multi-threaded kernel call in the child waits forever for pool threads that fork did not copy.
Every wait here has a timeout, so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np
import pytest

from tinygrad_lite import kernels

TIMEOUT = 60  # seconds; the work takes well under one


def _work(seed: int):
    """Large enough that each kernel would use every thread it is given."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((384, 256)).astype(np.float32)
    b = rng.standard_normal((256, 320)).astype(np.float32)
    batch = rng.standard_normal((8, 64, 128))
    x = rng.standard_normal((2048, 96)).astype(np.float32)
    targets = rng.integers(0, 96, size=2048)
    return a, b, batch, x, targets


def _run_kernels(seed: int):
    a, b, batch, x, targets = _work(seed)
    return (kernels.get_num_threads(), kernels.matmul(a, b),
            kernels.matmul(batch, batch.swapaxes(1, 2)),
            kernels.softmax(x), kernels.log_softmax(x), kernels.cross_entropy(x, targets)[0],
            np.matmul(a, b))  # NumPy's own BLAS (OpenBLAS) in the child too


def _check(result, seed: int):
    a, b, batch, x, targets = _work(seed)
    threads, mm, bmm, sm, lsm, loss, np_mm = result
    assert threads == 1
    np.testing.assert_allclose(mm, a @ b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bmm, batch @ batch.swapaxes(1, 2), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sm, kernels.reference_softmax(x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(lsm, kernels.reference_log_softmax(x), rtol=1e-5, atol=1e-5)
    assert loss == pytest.approx(kernels.reference_cross_entropy(x, targets)[0], rel=1e-5)
    np.testing.assert_allclose(np_mm, a @ b, rtol=1e-5, atol=1e-5)


@pytest.fixture
def parent_used_threads(c_kernels):
    """Run every kernel multi-threaded in this process first: that starts OpenMP's pool."""
    kernels.set_num_threads(2)
    _run_kernels(0)


# The suite's process has OpenMP threads by now, and Python >= 3.12 warns about any fork of a
# multi-threaded process; making forks safe for the kernels is exactly what is tested here.
pytestmark = pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")


def test_fork_pool_workers_run_kernels(parent_used_threads):
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        pending = [pool.apply_async(_run_kernels, (seed,)) for seed in (1, 2, 3)]
        results = [p.get(timeout=TIMEOUT) for p in pending]  # a deadlock raises TimeoutError
    for seed, result in zip((1, 2, 3), results):
        _check(result, seed)
    assert kernels.get_num_threads() == 2  # the parent keeps its threads


def test_os_fork_child_runs_kernels(parent_used_threads, tmp_path):
    out = tmp_path / "child.npz"
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            threads, mm, bmm, sm, lsm, loss, np_mm = _run_kernels(4)
            np.savez(out, threads=threads, mm=mm, bmm=bmm, sm=sm, lsm=lsm, loss=loss,
                     np_mm=np_mm)
            code = 0
        finally:
            os._exit(code)
    status = _wait_with_timeout(pid, TIMEOUT)
    assert status == 0, f"the forked child failed or hung (status {status})"
    saved = np.load(out)
    _check(tuple(saved[k][()] if saved[k].ndim == 0 else saved[k]
                 for k in ("threads", "mm", "bmm", "sm", "lsm", "loss", "np_mm")), 4)


def _wait_with_timeout(pid: int, timeout: float):
    """The child's exit status, or 'hung' (after killing it) if it runs past timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"


def test_forked_child_refuses_more_threads(parent_used_threads):
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        message = pool.apply_async(_try_set_threads).get(timeout=TIMEOUT)
    assert "set_num_threads(2)" in message and "spawn" in message


def _try_set_threads() -> str:
    try:
        kernels.set_num_threads(2)
    except RuntimeError as e:
        return str(e)
    return "no error"
