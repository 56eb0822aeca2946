"""The model, data and optimizers shared by the MPI worker (``ddp_worker.py``) and its
1-process reference in tests/test_distributed.py, so both train exactly the same thing."""

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite import nn

TRAINING_CASES = [(np.float64, "SGD"), (np.float64, "AdamW"),
                  (np.float32, "SGD"), (np.float32, "AdamW")]
SPLITS = [(2, 2), (3, 2), (1, 4)]  # samples on rank 0, rank 1 for the one-step gradient checks
SMALL_BUCKET_MB = 0.001  # about 1 KB: the MLP's gradients span several buckets
STEPS, BATCH = 6, 8


def make_model(dtype, seed: int) -> nn.Module:
    tg.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16, dtype=dtype), nn.Tanh(),
                         nn.Linear(16, 16, dtype=dtype), nn.Tanh(), nn.Linear(16, 3, dtype=dtype))


def make_optimizer(name: str, params):
    if name == "SGD":
        return tg.optim.SGD(params, lr=0.1, momentum=0.9)
    return tg.optim.AdamW(params, lr=0.01, weight_decay=0.1)


def batches(dtype, n: int = BATCH, steps: int = STEPS):
    """``steps`` global batches of ``n`` samples, the same on every rank."""
    rng = np.random.default_rng(0)
    for _ in range(steps):
        yield rng.normal(size=(n, 4)).astype(dtype), rng.normal(size=(n, 3)).astype(dtype)


def tensor(array: np.ndarray) -> tg.Tensor:
    return tg.tensor(array, dtype=array.dtype)


def loss_fn(prediction, target):
    return ((prediction - target) ** 2).mean()
