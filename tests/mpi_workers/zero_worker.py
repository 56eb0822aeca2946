"""Run by tests/test_zero.py under ``mpirun -np 2``: trains the tiny GPT of ``zero_cases.py``
(dropout on, per-rank streams) data-parallel with plain DDP and with ZeRO-1, for SGD and AdamW,
checkpoints after STEPS steps and goes on for EXTRA more; and resumes 2-rank training from a
1-process checkpoint. Saves this rank's results to ``OUT_DIR/rank{r}.npz``."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zero_cases as cases  # noqa: E402  (beside this file)

import tinygrad_lite.distributed as dist  # noqa: E402
from tinygrad_lite.nn.parallel import DistributedDataParallel  # noqa: E402

EXTRA = 3  # steps after the checkpoint


def state_bytes(optimizer) -> int:
    local = getattr(optimizer, "optim", optimizer)  # ZeRO: this rank's local optimizer
    return sum(v.nbytes for s in local.state.values() for v in s.values()
               if isinstance(v, np.ndarray))


def train(ddp, optimizer, stream, steps: int, zero: bool) -> None:
    for _ in range(steps):
        optimizer.zero_grad()
        loss, n = stream.loss(ddp)
        loss.backward()
        if zero:
            optimizer.reduce_gradients(num_samples=n)
        else:
            ddp.sync_gradients(num_samples=n)
        optimizer.step()


def checkpoint(ddp, optimizer, zero: bool, prefix: str, results: dict) -> None:
    """What rank 0 would write: weights and the whole (consolidated) optimizer state."""
    if zero:
        optimizer.consolidate_state_dict(to=0)
    if dist.get_rank() == 0:
        results.update(cases.state_arrays(optimizer.state_dict(), prefix + "/optimizer"))
        for name, value in ddp.module.state_dict().items():
            results[f"{prefix}/model/{name}"] = value


def main(out_dir: str) -> None:
    dist.init()
    rank = dist.get_rank()
    assert dist.get_world_size() == cases.WORLD
    results = {}
    for name in cases.OPTIMIZERS:
        for mode in ("plain", "zero"):
            zero = mode == "zero"
            # 2 ranks from the start, a checkpoint after STEPS steps, then EXTRA more steps.
            ddp = DistributedDataParallel(cases.make_model())
            stream = cases.RankStreams(rank)
            optimizer = cases.make_optimizer(name, ddp.module, zero)
            train(ddp, optimizer, stream, cases.STEPS, zero)
            results[f"{name}/{mode}/state_bytes"] = np.array(state_bytes(optimizer))
            for pname, p in ddp.module.named_parameters():
                results[f"{name}/{mode}/after/{pname}"] = p.data.copy()
            checkpoint(ddp, optimizer, zero, f"{name}/{mode}/checkpoint", results)
            train(ddp, optimizer, stream, EXTRA, zero)
            for pname, p in ddp.module.named_parameters():
                results[f"{name}/{mode}/final/{pname}"] = p.data.copy()

            # 1 process first (each rank alone, no communication), then 2 ranks from its
            # checkpoint: the weights into the model, the plain optimizer state into this one.
            model = cases.make_model()
            streams = [cases.RankStreams(r) for r in range(cases.WORLD)]
            single = cases.make_optimizer(name, model, zero=False)
            for _ in range(cases.STEPS):
                cases.accumulate_global_batch(model, streams)
                single.step()
            saved_model, saved_optimizer = model.state_dict(), single.state_dict()
            ddp = DistributedDataParallel(cases.make_model())
            ddp.module.load_state_dict(saved_model)
            optimizer = cases.make_optimizer(name, ddp.module, zero)
            optimizer.load_state_dict(saved_optimizer)
            train(ddp, optimizer, streams[rank], EXTRA, zero)
            for pname, p in ddp.module.named_parameters():
                results[f"{name}/{mode}/from_one/{pname}"] = p.data.copy()
    np.savez(os.path.join(out_dir, f"rank{rank}.npz"), **results)


if __name__ == "__main__":
    main(sys.argv[1])
