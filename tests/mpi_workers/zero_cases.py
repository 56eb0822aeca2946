"""What the ZeRO-1 worker (``zero_worker.py``, under ``mpirun -np 2``) and its 1-process
references in tests/test_zero.py share: a tiny GPT with dropout on, its token stream, the
optimizers (with two parameter groups, so a rank's part spans groups), and the per-rank random
streams -- so both sides train exactly the same thing."""

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite.data import rank_generator, seed_for_rank
from tinygrad_lite.models.gpt import GPT, GPTConfig
from tinygrad_lite.optim import SGD, AdamW
from tinygrad_lite.text import get_batch, rank_batch_size

WORLD = 2
SEED = 1234
STEPS, BATCH, CONTEXT = 5, 5, 8  # 5 windows: 3 on rank 0, 2 on rank 1 (an uneven split)
OPTIMIZERS = ["SGD", "AdamW"]
CONFIG = GPTConfig(vocab_size=23, context_length=CONTEXT, d_model=16, num_blocks=2,
                   num_heads=2, dropout=0.2)
TOKENS = np.random.default_rng(0).integers(0, CONFIG.vocab_size, size=400)


def make_model() -> GPT:
    tg.manual_seed(SEED)
    return GPT(CONFIG)


def param_groups(model) -> list:
    """nanoGPT's two groups: weight decay on matrices, none on biases and norms."""
    params = list(model.parameters())
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def optimizer_options(name: str) -> tuple:
    if name == "SGD":
        return SGD, dict(lr=0.05, momentum=0.9)
    return AdamW, dict(lr=0.01)


class RankStreams:
    """Rank r's batch generator and dropout-generator state, as rank r of a WORLD-rank run
    draws them (``rank_generator``, ``manual_seed(seed_for_rank(...))``)."""

    def __init__(self, rank: int):
        self.rank = rank
        self.batches = rank_generator(SEED, rank, WORLD)
        tg.manual_seed(seed_for_rank(SEED, rank, WORLD))
        self.dropout_state = tg.get_rng().bit_generator.state

    def batch(self):
        return get_batch(TOKENS, rank_batch_size(BATCH, self.rank, WORLD), CONTEXT,
                         self.batches)

    def loss(self, model):
        """Forward and loss on this rank's next micro-batch, with this rank's dropout stream."""
        x, y = self.batch()
        tg.get_rng().bit_generator.state = self.dropout_state
        _, loss = model(x, y)
        self.dropout_state = tg.get_rng().bit_generator.state
        return loss, len(x)


def accumulate_global_batch(model, streams: list) -> None:
    """One process: the ranks' micro-batches one after the other, each gradient weighted by
    the rank's share of the samples as DDP weights it, summed into ``.grad``."""
    grads = []
    for stream in streams:
        for p in model.parameters():
            p.grad = None
        loss, n = stream.loss(model)
        loss.backward()
        grads.append((n, {id(p): p.grad.data for p in model.parameters()}))
    total = sum(n for n, _ in grads)
    for p in model.parameters():
        g = None
        for n, per_param in grads:  # the ranks' order, as MPI's sum of two adds them
            term = per_param[id(p)] * p.dtype.type(n / total)
            g = term if g is None else g + term
        p.grad = tg.Tensor(g, dtype=p.dtype)


def make_optimizer(name: str, model, zero: bool):
    optimizer_class, options = optimizer_options(name)
    if zero:
        from tinygrad_lite.optim import ZeroRedundancyOptimizer
        return ZeroRedundancyOptimizer(param_groups(model), optimizer_class, **options)
    return optimizer_class(param_groups(model), **options)


def state_arrays(state_dict: dict, prefix: str) -> dict:
    """An optimizer state dict's per-parameter entries as flat npz-able arrays."""
    return {f"{prefix}/{i}/{key}": np.asarray(value)
            for i, buffers in state_dict["state"].items() for key, value in buffers.items()}


def state_from_arrays(arrays: dict, prefix: str, optimizer) -> dict:
    """The state dict ``state_arrays`` flattened, for ``optimizer`` (which gives the groups)."""
    state = {}
    for name, value in arrays.items():
        if name.startswith(prefix + "/"):
            i, key = name[len(prefix) + 1:].split("/")
            state.setdefault(int(i), {})[key] = int(value) if key == "step" else value
    return {"state": state, "param_groups": optimizer.state_dict()["param_groups"]}
