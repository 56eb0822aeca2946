"""Run by tests/test_distributed.py under ``mpirun -np 2``: trains the small MLP of
``ddp_cases.py`` data-parallel for every case and saves this rank's results to
``OUT_DIR/rank{r}.npz``, which the test compares with a 1-process reference."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ddp_cases  # noqa: E402  (beside this file)

import tinygrad_lite.distributed as dist  # noqa: E402
from tinygrad_lite.nn.parallel import DistributedDataParallel  # noqa: E402


def main(out_dir: str) -> None:
    dist.init()
    rank, world = dist.get_rank(), dist.get_world_size()
    assert world == 2, world
    results = {}
    for dtype, opt_name in ddp_cases.TRAINING_CASES:
        # A different seed per rank: broadcast_parameters in the wrapper must make them equal.
        model = ddp_cases.make_model(dtype, seed=100 + rank)
        ddp = DistributedDataParallel(model, bucket_cap_mb=ddp_cases.SMALL_BUCKET_MB)
        optimizer = ddp_cases.make_optimizer(opt_name, ddp.parameters())
        for x, y in ddp_cases.batches(dtype):
            half = len(x) // world
            xs, ys = x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half]
            optimizer.zero_grad()
            ddp_cases.loss_fn(ddp(ddp_cases.tensor(xs)), ddp_cases.tensor(ys)).backward()
            ddp.sync_gradients()
            optimizer.step()
        for name, value in ddp.module.state_dict().items():
            results[f"train/{np.dtype(dtype).name}/{opt_name}/{name}"] = value
        results[f"buckets/{np.dtype(dtype).name}/{opt_name}"] = np.array(len(ddp._buckets))
    for split in ddp_cases.SPLITS:  # one step's gradients with sample counts split unevenly
        model = ddp_cases.make_model(np.float64, seed=7)
        ddp = DistributedDataParallel(model)
        x, y = next(iter(ddp_cases.batches(np.float64, n=sum(split))))
        start = sum(split[:rank])
        xs, ys = x[start:start + split[rank]], y[start:start + split[rank]]
        ddp_cases.loss_fn(ddp(ddp_cases.tensor(xs)), ddp_cases.tensor(ys)).backward()
        ddp.sync_gradients(num_samples=split[rank])
        for name, p in ddp.module.named_parameters():
            results[f"grad/{split}/{name}"] = p.grad.data
    # Missing grads: "4.bias" has a grad on rank 0 only, "0.bias" on no rank.
    model = ddp_cases.make_model(np.float64, seed=7)
    ddp = DistributedDataParallel(model)
    x, y = next(iter(ddp_cases.batches(np.float64, n=4)))
    ddp_cases.loss_fn(ddp(ddp_cases.tensor(x[2 * rank:2 * rank + 2])),
                      ddp_cases.tensor(y[2 * rank:2 * rank + 2])).backward()
    model[0].bias.grad = None
    if rank == 1:
        model[4].bias.grad = None
    ddp.sync_gradients(num_samples=2)
    results["missing/0.bias is None"] = np.array(model[0].bias.grad is None)
    results["missing/4.bias"] = model[4].bias.grad.data
    np.savez(os.path.join(out_dir, f"rank{rank}.npz"), **results)


if __name__ == "__main__":
    main(sys.argv[1])
