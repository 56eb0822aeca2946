"""Run by tests/test_distributed.py under ``mpirun -np 2``: rank 1 raises while rank 0 waits in
an all-reduce that rank 1 never joins. The excepthook that ``init()`` installs must abort the
whole job (rather than leave rank 0 waiting forever) and print rank 1's error."""

import numpy as np

import tinygrad_lite.distributed as dist

dist.init()
if dist.get_rank() == 1:
    raise ValueError("rank 1 failed on purpose")
dist.all_reduce(np.zeros(3))
