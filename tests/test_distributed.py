"""tinygrad_lite.distributed and nn.parallel.DistributedDataParallel.

A world of size 1 (no launcher) is tested in this process. The 2-rank tests start
``mpirun -np 2`` on the scripts in tests/mpi_workers/ once per module, and compare what the
ranks saved with a 1-process reference computed here from the same model, data and optimizer
(tests/mpi_workers/ddp_cases.py).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_lite as tg
import tinygrad_lite.distributed as dist
from error_checks import raises
from fresh_python import run_python
from mpi_run import mpirun, needs_mpi
from tinygrad_lite.nn.parallel import DistributedDataParallel

WORKERS = Path(__file__).parent / "mpi_workers"
sys.path.insert(0, str(WORKERS))
import ddp_cases  # noqa: E402


@pytest.fixture
def world_of_one(monkeypatch):
    """A fresh size-1 world for this test (init() keeps its world in a module global)."""
    monkeypatch.setattr(dist, "_world", None)
    dist.init()
    return dist


# -- a world of size 1: plain `python script.py` ---------------------------------------------


def test_plain_python_is_a_world_of_one_without_importing_mpi():
    code = ("import sys, numpy as np, tinygrad_lite.distributed as dist\n"
            "dist.init(); a = np.arange(4.0); dist.all_reduce(a); dist.barrier()\n"
            "print(dist.get_rank(), dist.get_world_size(), dist.is_main_process(), a.tolist(),"
            " 'mpi4py' in sys.modules)")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "0 1 True [0.0, 1.0, 2.0, 3.0] False"


def test_world_of_one_all_reduce_is_identity(world_of_one):
    for op in ("sum", "prod", "min", "max"):
        a = np.array([1.5, -2.0, 3.0])
        assert dist.all_reduce(a, op=op) is a
        np.testing.assert_array_equal(a, [1.5, -2.0, 3.0])
    t = tg.tensor([1.0, 2.0])
    dist.all_reduce(t)
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])


def test_world_of_one_gather_object_is_a_json_round_trip(world_of_one):
    state = np.random.default_rng(5).bit_generator.state  # 128-bit integers inside
    gathered = [None]
    assert dist.gather_object({"state": state, "pair": (1, "é")}, gathered) is None
    assert gathered == [{"state": state, "pair": [1, "é"]}]  # a tuple arrives as a list
    restored = np.random.default_rng()
    restored.bit_generator.state = gathered[0]["state"]
    assert restored.random() == np.random.default_rng(5).random()


def test_ddp_in_a_world_of_one_is_a_pass_through_wrapper(world_of_one):
    model = ddp_cases.make_model(np.float64, seed=3)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    ddp = DistributedDataParallel(model)
    assert ddp.module is model
    assert [id(p) for p in ddp.parameters()] == [id(p) for p in model.parameters()]
    assert list(ddp.state_dict()) == ["module." + k for k in before]
    for k, v in before.items():
        np.testing.assert_array_equal(ddp.state_dict()["module." + k], v)
    x, y = next(ddp_cases.batches(np.float64))
    out = ddp(ddp_cases.tensor(x))
    np.testing.assert_array_equal(out.numpy(), model(ddp_cases.tensor(x)).numpy())
    ddp_cases.loss_fn(out, ddp_cases.tensor(y)).backward()
    grads = [p.grad.data.copy() for p in model.parameters()]
    ddp.sync_gradients(num_samples=len(x))
    for g, p in zip(grads, model.parameters()):
        np.testing.assert_array_equal(p.grad.data, g)
    assert not ddp.eval().module.training and ddp.train().module.training
    fresh = DistributedDataParallel(ddp_cases.make_model(np.float64, seed=4))
    fresh.load_state_dict(ddp.state_dict())  # "module." keys load into another wrapper...
    bare = ddp_cases.make_model(np.float64, seed=5)
    bare.load_state_dict(fresh.module.state_dict())  # ...and the module's into a bare model
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(bare.state_dict()[k], v)


def test_bad_input_names_the_function_and_value(world_of_one, monkeypatch):
    with raises(ValueError, "all_reduce", "op", "'avg'"):
        dist.all_reduce(np.zeros(2), op="avg")
    with raises(TypeError, "all_reduce", "bool", "astype"):
        dist.all_reduce(np.zeros(2, dtype=bool))
    with raises(TypeError, "all_reduce", "list"):
        dist.all_reduce([1.0, 2.0])
    with raises(ValueError, "all_reduce", "C-contiguous"):
        dist.all_reduce(np.zeros((3, 4))[:, ::2])
    with raises(ValueError, "broadcast", "src", "5"):
        dist.broadcast(np.zeros(2), src=5)
    with raises(TypeError, "gather_object", "JSON-able", "ndarray"):
        dist.gather_object(np.zeros(2), [None])
    with raises(ValueError, "gather_object", "object_gather_list", "world size (1)"):
        dist.gather_object(1, [])
    with raises(ValueError, "gather_object", "dst", "1"):
        dist.gather_object(1, [None], dst=1)
    model = ddp_cases.make_model(np.float32, seed=0)
    with raises(ValueError, "bucket_cap_mb", "0"):
        DistributedDataParallel(model, bucket_cap_mb=0)
    with raises(TypeError, "DistributedDataParallel", "module", "list"):
        DistributedDataParallel([model])
    with raises(ValueError, "sync_gradients", "num_samples", "-1"):
        DistributedDataParallel(model).sync_gradients(num_samples=-1)
    monkeypatch.setattr(dist, "_world", None)
    with raises(RuntimeError, "get_rank", "init()"):
        dist.get_rank()
    with raises(RuntimeError, "get_world_size", "init()"):
        DistributedDataParallel(model)


def test_buckets_pack_parameters_in_order_by_dtype_and_cap():
    from tinygrad_lite.nn.parallel import _make_buckets
    params = [tg.nn.Parameter(np.zeros(n, dtype=dt)) for n, dt in
              [(100, np.float32), (100, np.float32), (300, np.float32), (10, np.float64),
               (10, np.float32)]]
    buckets = _make_buckets(params, cap_bytes=1000)
    # 400 + 400 bytes fit in 1000; 1200 bytes get a bucket alone; a dtype change starts one
    ids = [id(p) for p in params]
    assert [[ids.index(id(p)) for p in b.params] for b in buckets] == [[0, 1], [2], [3], [4]]
    assert [b.buffer.dtype for b in buckets] == [np.float32, np.float32, np.float64, np.float32]
    assert [b.buffer.size for b in buckets] == [200, 300, 10, 10]


# -- two ranks under mpirun --------------------------------------------------------------------


def _mpirun(script: str, *args: str, timeout: float, threads: str = "1"):
    """``mpirun -np 2 python tests/mpi_workers/<script> <args>`` (see mpi_run.mpirun)."""
    return mpirun(WORKERS / script, *args, timeout=timeout, threads=threads)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of the 2 ranks of ddp_worker.py saved: [rank 0's arrays, rank 1's]."""
    out = tmp_path_factory.mktemp("ddp")
    result = _mpirun("ddp_worker.py", str(out), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]


def _accumulation_reference(dtype, opt_name: str) -> dict:
    """One process, each global batch as the same 2 micro-batches: backward on each (grads
    add up), then grad * 1/2 -- the same float operations as DDP's (g0 * 1/2) + (g1 * 1/2),
    since halving is exact."""
    model = ddp_cases.make_model(dtype, seed=100)  # rank 0's weights, which DDP broadcasts
    optimizer = ddp_cases.make_optimizer(opt_name, model.parameters())
    for x, y in ddp_cases.batches(dtype):
        optimizer.zero_grad()
        half = len(x) // 2
        for r in range(2):
            xs, ys = ddp_cases.tensor(x[r * half:(r + 1) * half]), \
                ddp_cases.tensor(y[r * half:(r + 1) * half])
            ddp_cases.loss_fn(model(xs), ys).backward()
        for p in model.parameters():
            p.grad = tg.Tensor(p.grad.data * p.grad.data.dtype.type(0.5))
        optimizer.step()
    return model.state_dict()


@needs_mpi
@pytest.mark.parametrize("dtype, opt_name", ddp_cases.TRAINING_CASES)
def test_two_ranks_bit_identical_to_gradient_accumulation(ranks, dtype, opt_name):
    reference = _accumulation_reference(dtype, opt_name)
    prefix = f"train/{np.dtype(dtype).name}/{opt_name}/"
    assert int(ranks[0][f"buckets/{np.dtype(dtype).name}/{opt_name}"]) > 1  # bucketing used
    for name, expected in reference.items():
        for rank in ranks:
            got = rank[prefix + name]
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected, err_msg=name)
    # and the weights moved: the reference is not just the (equal) initial weights
    initial = ddp_cases.make_model(dtype, seed=100).state_dict()
    assert not np.array_equal(reference["0.weight"], initial["0.weight"])


@needs_mpi
def test_all_ranks_hold_identical_parameters(ranks):
    train_keys = [k for k in ranks[0] if k.startswith("train/")]
    assert len(train_keys) == 4 * 6  # 4 cases x (3 weights + 3 biases)
    for key in train_keys:
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)


@needs_mpi
@pytest.mark.parametrize("split", ddp_cases.SPLITS)
def test_gradients_equal_the_global_batch_gradient(ranks, split):
    model = ddp_cases.make_model(np.float64, seed=7)
    x, y = next(ddp_cases.batches(np.float64, n=sum(split)))
    ddp_cases.loss_fn(model(ddp_cases.tensor(x)), ddp_cases.tensor(y)).backward()
    for name, p in model.named_parameters():
        for rank in ranks:
            np.testing.assert_allclose(rank[f"grad/{split}/{name}"], p.grad.data, rtol=1e-6,
                                       atol=0, err_msg=f"{split} {name}")


@needs_mpi
def test_two_ranks_see_the_world_and_the_collectives():
    result = _mpirun("world_info.py", timeout=120, threads="")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = sorted((json.loads(line) for line in result.stdout.splitlines()
                    if line.startswith("{")), key=lambda info: info["rank"])
    assert [(i["rank"], i["size"], i["main"]) for i in lines] == [(0, 2, True), (1, 2, False)]
    for info in lines:
        assert info["reduced"] == {"sum": [3.0, 4.0], "prod": [2.0, -21.0],
                                   "min": [1.0, -3.0], "max": [2.0, 7.0]}
        assert info["counts"] == [3]
        assert info["broadcast"] == [1.0, 1.0]  # rank 1's values on both
        # without TGL_NUM_THREADS the 2 ranks share the cores rather than each taking all
        assert info["threads"] == max(1, (os.cpu_count() or 1) // 2) or info["threads"] == 1
    assert lines[0]["gathered"] is None
    assert lines[1]["gathered"] == [{"rank": r, "big": 2 ** 100 + r, "pair": [r, "é"]}
                                    for r in range(2)]


@needs_mpi
def test_a_grad_missing_on_some_ranks_counts_as_zeros_there(ranks):
    model = ddp_cases.make_model(np.float64, seed=7)
    x, y = next(ddp_cases.batches(np.float64, n=4))
    ddp_cases.loss_fn(model(ddp_cases.tensor(x[:2])), ddp_cases.tensor(y[:2])).backward()
    expected = model[4].bias.grad.data * 0.5  # rank 0's grad, weighted 2/4, plus rank 1's 0
    for rank in ranks:
        np.testing.assert_array_equal(rank["missing/4.bias"], expected)
        assert rank["missing/0.bias is None"]  # no rank had one: it stays None on all


@needs_mpi
def test_an_exception_on_one_rank_ends_the_job_with_its_error():
    result = _mpirun("raise_on_one_rank.py", timeout=30)  # without the abort: a hang, and
    output = result.stdout + result.stderr                 # TimeoutExpired fails the test
    assert result.returncode != 0, output
    assert "rank 1 failed on purpose" in output
    assert "[rank 1]" in output
