"""Run by tests/test_distributed.py under ``mpirun -np 2`` without TGL_NUM_THREADS: prints what
each rank sees of the world, and the results of the collectives, one JSON line per rank."""

import json

import numpy as np

import tinygrad_lite.distributed as dist
from tinygrad_lite import kernels

dist.init()
rank = dist.get_rank()
dist.barrier()
values = np.array([rank + 1.0, 10.0 * rank - 3.0])  # rank 0: [1, -3]; rank 1: [2, 7]
reduced = {op: dist.all_reduce(values.copy(), op=op).tolist() for op in ("sum", "prod", "min",
                                                                          "max")}
counts = dist.all_reduce(np.array([rank + 1], dtype=np.int64)).tolist()
broadcast = dist.broadcast(np.full(2, float(rank)), src=1).tolist()
gathered = [None, None] if rank == 1 else None  # JSON values, big integers included
dist.gather_object({"rank": rank, "big": 2 ** 100 + rank, "pair": (rank, "é")}, gathered, dst=1)
print(json.dumps({"rank": rank, "size": dist.get_world_size(), "main": dist.is_main_process(),
                  "threads": kernels.get_num_threads(), "reduced": reduced, "counts": counts,
                  "broadcast": broadcast, "gathered": gathered}), flush=True)
