"""ZeRO-1 (optim.ZeroRedundancyOptimizer) and the collectives it is built on.

A world of size 1 is tested in this process. The 2-rank tests run tests/mpi_workers/
zero_worker.py under ``mpirun -np 2`` once, and compare what the ranks saved with 1-process
references computed here from the same tiny GPT (dropout on), tokens, optimizers and per-rank
random streams (tests/mpi_workers/zero_cases.py).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_lite as tg
import tinygrad_lite.distributed as dist
from error_checks import raises
from mpi_run import mpirun, needs_mpi
from tinygrad_lite.optim import SGD, AdamW, ZeroRedundancyOptimizer

WORKERS = Path(__file__).parent / "mpi_workers"
sys.path.insert(0, str(WORKERS))
import zero_cases as cases  # noqa: E402  (beside the worker that shares it)

EXTRA = 3  # zero_worker.py's steps after its checkpoint


@pytest.fixture
def world_of_one(monkeypatch):
    monkeypatch.setattr(dist, "_world", None)
    dist.init()
    return dist


def _mlp(seed=0, dtype=np.float32):
    tg.manual_seed(seed)
    return tg.nn.Sequential(tg.nn.Linear(3, 5, dtype=dtype), tg.nn.Tanh(),
                            tg.nn.Linear(5, 2, dtype=dtype))


# -- a world of size 1 -------------------------------------------------------------------------


def test_collectives_in_a_world_of_one_copy(world_of_one):
    whole, part = np.arange(6.0), np.zeros(6)
    assert dist.reduce_scatter_tensor(part, whole) is part
    np.testing.assert_array_equal(part, whole)
    gathered = np.zeros(6)
    dist.all_gather_into_tensor(gathered, np.arange(6.0) * 2)
    np.testing.assert_array_equal(gathered, np.arange(6.0) * 2)


def test_collectives_check_their_arguments(world_of_one):
    with raises(ValueError, "reduce_scatter_tensor", "input", "3"):
        dist.reduce_scatter_tensor(np.zeros(2), np.zeros(3))
    with raises(TypeError, "reduce_scatter_tensor", "float32", "float64"):
        dist.reduce_scatter_tensor(np.zeros(2, np.float32), np.zeros(2))
    with raises(ValueError, "reduce_scatter_tensor", "op", "'mean'"):
        dist.reduce_scatter_tensor(np.zeros(2), np.zeros(2), op="mean")
    with raises(TypeError, "reduce_scatter_tensor", "bool"):
        dist.reduce_scatter_tensor(np.zeros(2, bool), np.zeros(2, bool))
    with raises(ValueError, "all_gather_into_tensor", "output", "5"):
        dist.all_gather_into_tensor(np.zeros(5), np.zeros(4))
    whole = np.arange(8.0)  # a world of 1: rank 0's slot is the whole array, shifted is not
    dist.all_gather_into_tensor(whole, whole[:])
    np.testing.assert_array_equal(whole, np.arange(8.0))
    with raises(ValueError, "all_gather_into_tensor", "share memory"):
        dist.all_gather_into_tensor(whole[:4], whole[2:6])


@pytest.mark.parametrize("optimizer_class, options", [(AdamW, dict(lr=0.01)),
                                                      (SGD, dict(lr=0.1, momentum=0.9))])
@pytest.mark.parametrize("reduce", [True, False])
def test_world_of_one_equals_the_wrapped_optimizer(world_of_one, optimizer_class, options,
                                                   reduce):
    """Bit for bit, with two groups (a different weight decay each), through reduce_gradients
    or (PyTorch's way) straight from p.grad; and the same state dict."""
    models = [_mlp(), _mlp()]
    groups = [[{"params": [m[0].weight, m[2].weight], "weight_decay": 0.1},
               {"params": [m[0].bias, m[2].bias], "weight_decay": 0.0}] for m in models]
    zero = ZeroRedundancyOptimizer(groups[0], optimizer_class, **options)
    plain = optimizer_class(groups[1], **options)
    x = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    for _ in range(4):
        for model, optimizer in zip(models, (zero, plain)):
            optimizer.zero_grad()
            (model(tg.tensor(x)) ** 2).mean().backward()
            if optimizer is zero and reduce:
                zero.reduce_gradients(num_samples=4)
                assert all(p.grad is None for p in model.parameters())
            optimizer.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        np.testing.assert_array_equal(a.data, b.data)
    zero.consolidate_state_dict()
    saved, expected = zero.state_dict(), plain.state_dict()
    assert saved["param_groups"] == expected["param_groups"]
    assert saved["state"].keys() == expected["state"].keys()
    for i, buffers in expected["state"].items():
        assert saved["state"][i].keys() == buffers.keys()
        for key, value in buffers.items():
            np.testing.assert_array_equal(saved["state"][i][key], value)


def test_load_state_dict_then_train_equals_the_plain_optimizer(world_of_one):
    models = [_mlp(), _mlp(), _mlp()]
    x = tg.tensor(np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32))
    first = AdamW(models[0].parameters(), lr=0.01)
    for _ in range(3):
        first.zero_grad()
        (models[0](x) ** 2).mean().backward()
        first.step()
    for m in models[1:]:
        m.load_state_dict(models[0].state_dict())
    zero = ZeroRedundancyOptimizer(models[1].parameters(), AdamW, lr=0.01)
    zero.load_state_dict(first.state_dict())
    plain = AdamW(models[2].parameters(), lr=0.01)
    plain.load_state_dict(first.state_dict())
    for _ in range(2):
        for model, optimizer in ((models[1], zero), (models[2], plain)):
            optimizer.zero_grad()
            (model(x) ** 2).mean().backward()
            optimizer.step()
    for a, b in zip(models[1].parameters(), models[2].parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_a_learning_rate_schedule_reaches_the_local_optimizer(world_of_one):
    model = _mlp()
    zero = ZeroRedundancyOptimizer(model.parameters(), SGD, lr=0.1)
    zero.param_groups[0]["lr"] = 0.0  # as a scheduler does: then a step changes nothing
    before = [p.data.copy() for p in model.parameters()]
    (model(tg.randn(2, 3)) ** 2).sum().backward()
    zero.step()
    for b, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(b, p.data)


def test_clip_grad_norm_matches_nn_utils(world_of_one):
    models = [_mlp(dtype=np.float64), _mlp(dtype=np.float64)]
    x = tg.tensor(np.random.default_rng(3).normal(size=(4, 3)))
    for m in models:
        (m(x) ** 2).sum().mul(100.0).backward()
    zero = ZeroRedundancyOptimizer(models[0].parameters(), SGD, lr=1.0)
    zero.reduce_gradients()
    total = zero.clip_grad_norm_(0.5)
    expected = tg.nn.utils.clip_grad_norm_(models[1].parameters(), 0.5)
    assert math.isclose(total, expected, rel_tol=1e-12)
    np.testing.assert_allclose(zero._grad_part, np.concatenate(
        [p.grad.data.ravel() for p in models[1].parameters()]), rtol=1e-12)


def test_bad_use_gets_clear_errors(world_of_one):
    model = _mlp()
    with raises(TypeError, "ZeroRedundancyOptimizer", "optimizer_class", "'AdamW'"):
        ZeroRedundancyOptimizer(model.parameters(), "AdamW", lr=0.1)
    with raises(ValueError, "AdamW", "lr"):
        ZeroRedundancyOptimizer(model.parameters(), AdamW, lr=-1.0)
    mixed = [tg.nn.Parameter(np.zeros(2, np.float32)), tg.nn.Parameter(np.zeros(2))]
    with raises(TypeError, "ZeroRedundancyOptimizer", "one dtype", "float32", "float64"):
        ZeroRedundancyOptimizer(mixed, SGD, lr=0.1)
    zero = ZeroRedundancyOptimizer(model.parameters(), AdamW, lr=0.1)
    with raises(RuntimeError, "state_dict", "consolidate_state_dict"):
        zero.state_dict()
    with raises(ValueError, "consolidate_state_dict", "to", "3"):
        zero.consolidate_state_dict(to=3)
    with raises(RuntimeError, "clip_grad_norm_", "reduce_gradients"):
        zero.clip_grad_norm_(1.0)
    (model[0](tg.randn(2, 3)) ** 2).sum().backward()  # model[2] gets no gradient
    with raises(RuntimeError, "reduce_gradients", "parameter 2", "no gradient"):
        zero.reduce_gradients()
    with raises(ValueError, "reduce_gradients", "num_samples", "-2"):
        zero.reduce_gradients(num_samples=-2)
    monkey_world = dist._world
    dist._world = None
    try:
        with raises(RuntimeError, "get_world_size", "init()"):
            ZeroRedundancyOptimizer(model.parameters(), AdamW, lr=0.1)
    finally:
        dist._world = monkey_world


# -- two ranks under mpirun --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of the 2 ranks of zero_worker.py saved: [rank 0's arrays, rank 1's]."""
    out = tmp_path_factory.mktemp("zero")
    result = mpirun(WORKERS / "zero_worker.py", str(out), timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]


def _one_process(name: str, steps: int, resume_after: int | None = None,
                 checkpoint: dict | None = None) -> dict:
    """1 process, each global batch as the 2 ranks' micro-batches (their streams replayed);
    with ``resume_after``: rebuilt from ``checkpoint`` (weights + optimizer) at that step."""
    model = cases.make_model()
    streams = [cases.RankStreams(r) for r in range(cases.WORLD)]
    optimizer = cases.make_optimizer(name, model, zero=False)
    for step in range(steps):
        if step == resume_after:
            model = cases.make_model()
            model.load_state_dict({k[len("model/"):]: v for k, v in checkpoint.items()
                                   if k.startswith("model/")})
            optimizer = cases.make_optimizer(name, model, zero=False)
            optimizer.load_state_dict(cases.state_from_arrays(checkpoint, "optimizer",
                                                              optimizer))
        cases.accumulate_global_batch(model, streams)
        optimizer.step()
    return {name: p.data for name, p in model.named_parameters()}


def _saved(rank: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in rank.items() if k.startswith(prefix)}


@needs_mpi
@pytest.mark.parametrize("name", cases.OPTIMIZERS)
def test_two_ranks_with_dropout_bit_identical_to_one_process_accumulation(ranks, name):
    """Plain DP and ZeRO-1, 5 steps of the GPT with dropout, 3 + 2 windows per step."""
    expected = _one_process(name, cases.STEPS)
    initial = {n: p.data for n, p in cases.make_model().named_parameters()}
    for mode in ("plain", "zero"):
        for rank in ranks:
            got = _saved(rank, f"{name}/{mode}/after/")
            assert got.keys() == expected.keys()
            for pname, value in expected.items():
                np.testing.assert_array_equal(got[pname], value, err_msg=f"{mode} {pname}")
    assert not np.array_equal(expected["lm_head.weight"], initial["lm_head.weight"])


@needs_mpi
@pytest.mark.parametrize("name", cases.OPTIMIZERS)
def test_zero_is_bit_identical_to_plain_data_parallel_and_ranks_agree(ranks, name):
    for stage in ("after", "final", "from_one"):
        plain = _saved(ranks[0], f"{name}/plain/{stage}/")
        for rank in ranks:
            zero = _saved(rank, f"{name}/zero/{stage}/")
            for pname, value in plain.items():
                np.testing.assert_array_equal(zero[pname], value, err_msg=f"{stage} {pname}")
        for pname, value in plain.items():
            np.testing.assert_array_equal(_saved(ranks[1], f"{name}/plain/{stage}/")[pname],
                                          value)


@needs_mpi
@pytest.mark.parametrize("name", cases.OPTIMIZERS)
def test_zero_optimizer_state_per_rank_is_half(ranks, name):
    plain = int(ranks[0][f"{name}/plain/state_bytes"])
    num_params = sum(p.data.size for p in cases.make_model().parameters())
    buffers = 2 if name == "AdamW" else 1  # exp_avg and exp_avg_sq / momentum_buffer
    itemsize = np.dtype(np.float32).itemsize
    assert plain == buffers * num_params * itemsize
    part = math.ceil(num_params / 2)  # rank 0's part; rank 1 holds the rest (no padding state)
    for rank, elements in zip(ranks, (part, num_params - part)):
        zero = int(rank[f"{name}/zero/state_bytes"])
        assert zero == buffers * elements * itemsize
        assert zero <= 0.55 * plain


@needs_mpi
@pytest.mark.parametrize("name", cases.OPTIMIZERS)
def test_checkpoint_from_two_ranks_resumes_in_one_process(ranks, name):
    """The consolidated ZeRO state is the plain optimizer's, key for key and bit for bit; 1
    process resumed from either 2-rank checkpoint ends where the 2 ranks ended."""
    plain = _saved(ranks[0], f"{name}/plain/checkpoint/")
    zero = _saved(ranks[0], f"{name}/zero/checkpoint/")
    assert plain.keys() == zero.keys() and any(k.startswith("optimizer/") for k in plain)
    for key, value in plain.items():
        np.testing.assert_array_equal(zero[key], value, err_msg=key)
    total = cases.STEPS + EXTRA
    for mode, checkpoint in (("plain", plain), ("zero", zero)):
        resumed = _one_process(name, total, resume_after=cases.STEPS, checkpoint=checkpoint)
        for pname, value in resumed.items():
            np.testing.assert_array_equal(ranks[0][f"{name}/{mode}/final/{pname}"], value,
                                          err_msg=f"{mode} {pname}")


@needs_mpi
@pytest.mark.parametrize("name", cases.OPTIMIZERS)
def test_checkpoint_from_one_process_resumes_on_two_ranks(ranks, name):
    expected = _one_process(name, cases.STEPS + EXTRA)
    for mode in ("plain", "zero"):
        for rank in ranks:
            got = _saved(rank, f"{name}/{mode}/from_one/")
            for pname, value in expected.items():
                np.testing.assert_array_equal(got[pname], value, err_msg=f"{mode} {pname}")
