"""A Transformer-encoder regressor trained with the package's full toolkit.

Data: random sequences x of shape (1000, 5, 10) ~ N(0, 1); the target is a position-weighted
mean, y = sum_t w_t · mean_f x[t, f] with w_t ∝ t + 1, standardised to mean 0 and std 1 (so
predicting the mean gives MSE 1.0). An 80/20 train/validation split.

Model: Linear(10 → 64) input projection, sinusoidal positions, 3 pre-LayerNorm encoder layers
(4 heads, feed-forward 256, dropout 0.1), flatten, Linear(320 → 64) → ReLU → Dropout →
Linear(64 → 1). Training: DataLoader (batch 32, shuffled), MSELoss, AdamW (lr 1e-3, weight decay
1e-4), gradient-norm clipping at 1.0, ReduceLROnPlateau on the validation loss; then
predictions in eval mode under no_grad.

    python examples/transformer_regression.py            # 50 epochs
    python examples/transformer_regression.py --epochs 5 --out-dir runs/regression_5
    mpirun -np 2 python examples/transformer_regression.py   # data parallel on 2 ranks

The run folder (``--out-dir``) gets config.json, metrics.csv (one row per epoch),
summary.json and loss.png; an existing run there is never replaced without ``--overwrite``.

Under ``mpirun -np N`` each rank trains on its own shard of the training set
(``DistributedSampler``, reshuffled every epoch) with 1/N of each batch, and the gradients are
averaged over the ranks before every update (``DistributedDataParallel``; ``--zero 1`` also
shards the AdamW state). Every rank computes the same validation loss (the scheduler needs it);
only rank 0 prints and writes the run folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import tinygrad_lite as tg
import tinygrad_lite.distributed as dist
from tinygrad_lite import nn, optim
from tinygrad_lite.data import (DataLoader, DistributedSampler, TensorDataset, random_split,
                                seed_for_rank)
from tinygrad_lite.nn.parallel import DistributedDataParallel
from tinygrad_lite.train import RunLogger, mse, progress, r2
from tinygrad_lite.train.cli import (add_run_folder_flags, check_run_folder,
                                     decided_by_main_process, make_parser, non_negative_float,
                                     non_negative_int, positive_float, positive_int)
from tinygrad_lite.train.logger import RUN_FILES

MIN_SAMPLES = 10  # the 80/20 split then leaves at least 2 validation samples (R² needs 2)


class SequenceRegressor(nn.Module):
    def __init__(self, n_features: int, seq_len: int, d_model: int = 64, num_heads: int = 4,
                 num_layers: int = 3, dim_feedforward: int = 256, dropout: float = 0.1):
        super().__init__()
        self.input_projection = nn.Linear(n_features, d_model)
        self.positions = nn.SinusoidalPositionalEncoding(d_model, max_len=seq_len)
        self.encoder = nn.Sequential(*[
            nn.TransformerEncoderLayer(d_model, num_heads, dim_feedforward, dropout=dropout)
            for _ in range(num_layers)])
        self.head = nn.Sequential(nn.Linear(seq_len * d_model, d_model), nn.ReLU(),
                                  nn.Dropout(dropout), nn.Linear(d_model, 1))

    def forward(self, x):                      # x: (batch, time, features)
        h = self.positions(self.input_projection(x))
        h = self.encoder(h)                    # (batch, time, d_model)
        return self.head(h.flatten(1)).reshape(-1)   # (batch,)


def make_data(n: int, seq_len: int, n_features: int, rng: np.random.Generator):
    x = rng.standard_normal((n, seq_len, n_features)).astype(np.float32)
    weights = np.arange(1, seq_len + 1, dtype=np.float32)
    weights /= weights.sum()
    y = (x.mean(axis=2) * weights).sum(axis=1)
    y = (y - y.mean()) / y.std()
    return x, y.astype(np.float32)


def build_parser() -> argparse.ArgumentParser:
    p = make_parser(__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=positive_int, default=50, help="passes over the training set")
    p.add_argument("--samples", type=positive_int, default=1000,
                   help=f"sequences generated, split 80/20 (at least {MIN_SAMPLES})")
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="sequences per step (over all ranks: each of N takes ceil(B/N))")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="AdamW learning rate")
    p.add_argument("--weight-decay", type=non_negative_float, default=1e-4,
                   help="AdamW decoupled weight decay")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the data, weights and batches")
    p.add_argument("--zero", type=int, choices=[0, 1], default=0,
                   help="1: ZeRO stage 1 under mpirun, each rank keeps the AdamW state of 1/N "
                        "of the parameters")
    add_run_folder_flags(p, "runs/transformer_regression")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    """The arguments, each checked, and checked together, before anything is trained.
    Joins the MPI world first (a world of 1 under plain ``python``)."""
    dist.init()
    p = build_parser()
    args = p.parse_args(argv)
    if args.samples < MIN_SAMPLES:
        p.error(f"argument --samples: {args.samples} sequences leave fewer than 2 for "
                f"validation after the 80/20 split; use --samples {MIN_SAMPLES} or more")
    decided_by_main_process(lambda: check_run_folder(p, args, RUN_FILES))
    return args


def make_loader(train_set, args) -> tuple:
    """The training batches of this rank, and its DistributedSampler (None in a world of 1,
    which keeps the single process's own shuffle, so its numbers stay what they were)."""
    world_size = dist.get_world_size()
    if world_size == 1:
        loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                            generator=np.random.default_rng(args.seed))
        return loader, None
    # Every rank gets a shard of the same size and the same batch size: the same number of
    # steps per epoch, so that no rank waits forever for another in sync_gradients.
    sampler = DistributedSampler(train_set, seed=args.seed)
    return DataLoader(train_set, batch_size=-(-args.batch_size // world_size),
                      sampler=sampler), sampler


def main(argv=None) -> int:
    args = parse_args(argv)
    is_main = dist.is_main_process()
    say = print if is_main else (lambda *a: None)
    write = tqdm.write if is_main else (lambda *a: None)  # above the progress bar
    if is_main:
        log = RunLogger(args.out_dir / "metrics.csv")
        log.write_config({**{k: (str(v) if isinstance(v, Path) else v)
                             for k, v in vars(args).items()},
                          "world_size": dist.get_world_size()})

    tg.manual_seed(args.seed)
    x, y = make_data(args.samples, 5, 10, np.random.default_rng(args.seed))
    train_set, val_set = random_split(TensorDataset(x, y), [0.8, 0.2],
                                      generator=np.random.default_rng(args.seed))
    loader, sampler = make_loader(train_set, args)
    x_val, y_val = tg.tensor(x[val_set.indices]), y[val_set.indices]

    model = SequenceRegressor(n_features=10, seq_len=5)
    ddp = DistributedDataParallel(model)  # rank 0's weights on every rank
    if dist.get_world_size() > 1:  # this rank's own dropout masks
        tg.manual_seed(seed_for_rank(args.seed))
    loss_fn = nn.MSELoss()
    if args.zero:
        optimizer = optim.ZeroRedundancyOptimizer(model.parameters(), optim.AdamW, lr=args.lr,
                                                  weight_decay=args.weight_decay)
    else:
        optimizer = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
    say(f"{model.num_parameters():,} parameters; {len(train_set)} train / {len(val_set)} "
        f"validation samples, {len(loader)} batches per epoch"
        f"{f' on each of {dist.get_world_size()} ranks' if sampler is not None else ''}")
    # Lines printed during training go through tqdm.write, above the progress bar.
    write(f"{'epoch':>5} {'train loss':>11} {'val loss':>10} {'lr':>9} {'grad norm':>10} "
          f"{'time':>6}")

    model.eval()
    with tg.no_grad():
        initial_val_loss = mse(model(x_val), y_val)
    write(f"{0:>5} {'':>11} {initial_val_loss:>10.5f}   (before training)")

    start = time.perf_counter()
    first_train_loss = None
    for epoch in range(1, args.epochs + 1):
        model.train()
        if sampler is not None:
            sampler.set_epoch(epoch)                   # the same new shuffle on every rank
        epoch_start, total, count, norm = time.perf_counter(), 0.0, 0, 0.0
        for xb, yb in progress(loader, desc=f"epoch {epoch}", disable=None if is_main else True):
            prediction = ddp(xb)                       # 1. forward
            loss = loss_fn(prediction, yb)             # 2. loss
            optimizer.zero_grad()
            loss.backward()                            # 3. backward
            if args.zero:  # (averaged over the ranks, each rank keeping its 1/N part)
                optimizer.reduce_gradients(num_samples=len(yb))
                norm = optimizer.clip_grad_norm_(max_norm=1.0)
            else:          # (averaged over the ranks: a no-op in a world of 1)
                ddp.sync_gradients(num_samples=len(yb))
                norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()                           # 4. update
            total += loss.item() * len(yb)
            count += len(yb)
        total, count = dist.all_reduce(np.array([total, count], dtype=np.float64))  # all ranks
        train_loss = float(total / count)
        first_train_loss = train_loss if first_train_loss is None else first_train_loss

        model.eval()
        with tg.no_grad():
            val_loss = mse(model(x_val), y_val)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step(val_loss)
        epoch_seconds = time.perf_counter() - epoch_start
        if is_main:
            log.log(epoch=epoch, train_loss=train_loss, val_loss=val_loss, lr=lr,
                    grad_norm=float(norm), epoch_seconds=round(epoch_seconds, 3))
        write(f"{epoch:>5} {train_loss:>11.5f} {val_loss:>10.5f} {lr:>9.2e} {norm:>10.3f} "
              f"{epoch_seconds:>5.2f}s")
    seconds = time.perf_counter() - start
    if not is_main:
        return 0

    model.eval()
    with tg.no_grad():
        predictions = model(x_val).numpy()
    print("\nvalidation predictions (eval mode, no_grad):")
    for i in range(min(5, len(y_val))):
        print(f"  target {y_val[i]:+.4f}   prediction {predictions[i]:+.4f}")
    print(f"\ntrain loss: epoch 1 {first_train_loss:.5f} -> epoch {args.epochs} {train_loss:.5f} "
          f"({first_train_loss / train_loss:.1f}x lower)")
    final_val_loss = mse(predictions, y_val)
    print(f"validation MSE: before training {initial_val_loss:.5f} -> after {final_val_loss:.5f} "
          f"({initial_val_loss / final_val_loss:.0f}x lower), R² {r2(predictions, y_val):.4f} "
          f"(predicting the mean gives MSE ≈ 1)")
    print(f"time: {seconds:.1f} s for {args.epochs} epochs ({seconds / args.epochs:.2f} s/epoch)")
    log.plot(args.out_dir / "loss.png", "epoch", ["train_loss", "val_loss"], logy=True,
             title="Transformer regressor: MSE")
    log.write_summary({"epochs": args.epochs, "train_loss": train_loss,
                       "first_train_loss": first_train_loss, "val_loss": final_val_loss,
                       "initial_val_loss": initial_val_loss, "val_r2": r2(predictions, y_val),
                       "parameters": model.num_parameters(), "train_seconds": seconds,
                       "seconds_per_epoch": seconds / args.epochs})
    print(f"run folder: {args.out_dir} (config.json, metrics.csv, summary.json, loss.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
