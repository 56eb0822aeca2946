"""Train the tiny GPT on a text file, then print a generated sample.

    python examples/train_gpt.py                      # reference settings, tiny Shakespeare
    python examples/train_gpt.py --vocab compact      # only the tokens of the corpus (8x smaller)
    python examples/train_gpt.py --resume             # continue from <out-dir>/last.safetensors
    mpirun -np 2 python examples/train_gpt.py --vocab compact   # data parallel on 2 ranks
    mpirun -np 2 python examples/train_gpt.py --vocab compact --zero 1  # + ZeRO-1 sharding

The loop is the four steps of every example -- forward, loss, backward, update -- on random
windows of the training text (``get_batch``). Every ``--eval-interval`` steps the mean loss over
``--eval-iters`` batches of each split is measured in eval mode without building a graph, logged
to ``<out-dir>/metrics.csv`` (and drawn to ``loss.png`` at the end), and the model is
checkpointed: ``last.safetensors`` always, ``best.safetensors`` when the validation loss improves. The run folder
also gets ``config.json`` (the settings) and ``summary.json`` (final losses, speed); a second run
into the same folder is refused unless it says ``--resume`` or ``--overwrite``.
A checkpoint holds the model, its config, the tokenizer (vocabulary mode and mapping), the
optimizer state, the step and the random-generator states, so ``--resume`` continues exactly as
if the run had not stopped.

Under ``mpirun -np N`` every rank draws its share of the ``--batch-size`` windows from its own
random stream (and its own dropout masks); the gradients are averaged over the ranks before
each update (``DistributedDataParallel``; with ``--zero 1`` each rank keeps the AdamW state of
1/N of the parameters). Only rank 0 evaluates, prints and writes the run folder. Checkpoints
hold the plain optimizer state and every rank's random streams: they resume on any number of
ranks, exactly when it is the same number (on another number the streams restart from the seed
and the step).
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from pathlib import Path

import numpy as np

import tinygrad_lite as tg
import tinygrad_lite.distributed as dist
from tinygrad_lite.data import rank_generator, seed_for_rank
from tinygrad_lite.models.gpt import GPT, GPTConfig
from tinygrad_lite.nn.parallel import DistributedDataParallel
from tinygrad_lite.nn.utils import clip_grad_norm_
from tinygrad_lite.optim import AdamW, ZeroRedundancyOptimizer
from tinygrad_lite.text import (Tokenizer, check_split_length, get_batch, rank_batch_size,
                                split_tokens)
from tinygrad_lite.train import RunLogger, progress
from tinygrad_lite.train.checkpoint import CheckpointError
from tinygrad_lite.train.cli import (BEST_CHECKPOINT, LAST_CHECKPOINT, add_run_folder_flags,
                                     check_run_folder, decided_by_main_process, make_parser,
                                     non_negative_float, non_negative_int, positive_float,
                                     positive_int, probability, resume_checkpoint, text_file)
from tinygrad_lite.train.language_model import (check_resumable, estimate_loss, resume_gpt,
                                             save_gpt_checkpoint)
from tinygrad_lite.train.logger import RUN_FILES
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent


OUTPUTS = RUN_FILES + (BEST_CHECKPOINT, LAST_CHECKPOINT)  # what a run writes into --out-dir


def build_parser() -> argparse.ArgumentParser:
    p = make_parser(__doc__.split("\n\n")[0])
    p.add_argument("--data", type=text_file, default=str(REPO / "data" / "tinyshakespeare.txt"),
                   help="UTF-8 text file; first 90%% trains, last 10%% validates")
    p.add_argument("--vocab", choices=["full", "compact"], default="full",
                   help="full: every cl100k token; compact: only the tokens of --data")
    p.add_argument("--max-iters", type=positive_int, default=500,
                   help="optimizer steps in total (counting those before a --resume)")
    p.add_argument("--batch-size", type=positive_int, default=2,
                   help="windows per step (over all ranks: each of N draws about 1/N of them)")
    p.add_argument("--context-length", type=positive_int, default=128,
                   help="tokens per window (T)")
    p.add_argument("--d-model", type=positive_int, default=80,
                   help="width of every token's vector (even, divisible by --num-heads)")
    p.add_argument("--num-blocks", type=positive_int, default=6, help="Transformer blocks")
    p.add_argument("--num-heads", type=positive_int, default=4, help="attention heads per block")
    p.add_argument("--dropout", type=probability, default=0.1, help="dropout rate in [0, 1)")
    p.add_argument("--lr", type=positive_float, default=1e-3,
                   help="AdamW learning rate (constant)")
    p.add_argument("--weight-decay", type=non_negative_float, default=0.01,
                   help="AdamW's (PyTorch default)")
    p.add_argument("--grad-clip", type=non_negative_float, default=0.0,
                   help="clip the gradient norm to this value (0: no clipping)")
    p.add_argument("--zero", type=int, choices=[0, 1], default=0,
                   help="1: ZeRO stage 1 under mpirun, each rank keeps the AdamW state of 1/N "
                        "of the parameters (the same checkpoints as 0, and without --grad-clip "
                        "the same numbers)")
    p.add_argument("--eval-interval", type=positive_int, default=50,
                   help="evaluate and checkpoint every N steps")
    p.add_argument("--eval-iters", type=positive_int, default=10,
                   help="batches per split per evaluation")
    p.add_argument("--seed", type=non_negative_int, default=1337,
                   help="seed of the weights and batches")
    add_run_folder_flags(p, "runs/gpt", resume=True)
    p.add_argument("--sample-tokens", type=non_negative_int, default=200,
                   help="tokens to generate at the end (0: no sample)")
    p.add_argument("--prompt", default="\n",
                   help="start of the sample at the end (default: %(default)r)")
    p.add_argument("--temperature", type=non_negative_float, default=1.0,
                   help="sampling temperature (0: always the likeliest token)")
    p.add_argument("--top-k", type=positive_int, default=None,
                   help="sample among the k likeliest tokens (None: all of them)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no per-eval lines")
    return p


@functools.lru_cache(maxsize=2)
def load_corpus(path: Path, vocab: str) -> tuple[Tokenizer, dict]:
    """The tokenizer of ``path`` and its train/val token splits (cached: the argument check
    and the training read the same corpus once)."""
    text = path.read_text(encoding="utf-8")
    tokenizer = Tokenizer.from_text(text, vocab)
    return tokenizer, split_tokens(tokenizer.encode(text, what=f"the corpus {path}"))


def parse_args(argv=None) -> argparse.Namespace:
    """The arguments, each checked, and checked together, before anything is trained.
    Joins the MPI world first (a world of 1 under plain ``python``)."""
    dist.init()
    p = build_parser()
    args = p.parse_args(argv)
    decided_by_main_process(lambda: check_together(p, args))
    return args


def check_together(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What no single flag shows: the run folder, the corpus against the model, the batch
    against the ranks, the checkpoint to resume. Ends the program with ``p.error``."""
    world_size = dist.get_world_size()
    if args.batch_size < world_size:
        p.error(f"argument --batch-size: {args.batch_size} windows cannot be shared by "
                f"{world_size} ranks (each draws at least one); use --batch-size "
                f"{world_size} or more")
    check_run_folder(p, args, OUTPUTS)
    try:
        tokenizer, splits = load_corpus(args.data, args.vocab)
        config = model_config(args, tokenizer)
        for name, tokens in splits.items():
            check_split_length(tokens, args.context_length, name)
        if args.sample_tokens > 0:  # a compact vocabulary may lack the prompt's tokens
            tokenizer.encode(args.prompt, what="the prompt")
        if args.resume:  # the same model and vocabulary as the run it continues
            check_resumable(resume_checkpoint(args.out_dir), config, tokenizer)
    except ValueError as e:  # CheckpointError is a ValueError too
        p.error(str(e))


def model_config(args, tokenizer: Tokenizer) -> GPTConfig:
    return GPTConfig(vocab_size=tokenizer.vocab_size, context_length=args.context_length,
                     d_model=args.d_model, num_blocks=args.num_blocks,
                     num_heads=args.num_heads, dropout=args.dropout)


# -- every rank's random streams: its training windows and its dropout masks ------------------

def stream_states(batch_rng: np.random.Generator) -> dict:
    """This rank's two random streams as JSON-able states."""
    return {"batches": batch_rng.bit_generator.state, "package": tg.get_rng().bit_generator.state}


def gather_stream_states(batch_rng: np.random.Generator) -> list | None:
    """Every rank's stream states, in rank order, on rank 0 (None elsewhere). A collective:
    every rank calls it at every checkpoint."""
    states = [None] * dist.get_world_size() if dist.is_main_process() else None
    dist.gather_object(stream_states(batch_rng), states, dst=0)
    return states


def restart_seed(seed: int, step: int) -> int:
    """The seed the streams restart from when a run resumes on another number of ranks."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1, np.uint64)[0])


def restore_streams(checkpoint: dict, source, batch_rng: np.random.Generator,
                    seed: int) -> str | None:
    """Continue this rank's streams from the checkpoint when it was written by as many ranks as
    run now: then the resumed run equals an uninterrupted one. Else restart them from (seed,
    step), since the saved ones belong to another division of the batch, and return a line
    that says so."""
    saved_world = checkpoint["extra"].get("world_size", 1)  # (older checkpoints: 1 process)
    world_size, rank, step = dist.get_world_size(), dist.get_rank(), checkpoint["step"]
    if saved_world == world_size:
        states = checkpoint["extra"].get("rank_streams")
        if states is not None:  # (else a 1-process checkpoint: load_checkpoint restored them)
            try:
                batch_rng.bit_generator.state = states[rank]["batches"]
                tg.get_rng().bit_generator.state = states[rank]["package"]
            except (KeyError, IndexError, TypeError, ValueError) as e:
                raise CheckpointError(f"{source}: the saved random streams of rank {rank} are "
                                      f"unusable: {e!r}") from None
        return None
    restart = restart_seed(seed, step)
    batch_rng.bit_generator.state = rank_generator(restart).bit_generator.state
    tg.manual_seed(seed_for_rank(restart))
    return (f"{source} was written by {saved_world} rank(s), this run has {world_size}: "
            f"weights, optimizer state and step restored; the batch and dropout streams "
            f"restart from (seed {seed}, step {step}), so the run differs from an "
            f"uninterrupted one")


# -- training --------------------------------------------------------------------------------

def train(args) -> dict:
    """Run the training described by ``args``; return a summary (losses, speed, paths).
    Every rank runs it; only rank 0 evaluates, prints and writes files, and only its summary
    holds the losses."""
    tokenizer, splits = load_corpus(args.data, args.vocab)
    world_size, is_main = dist.get_world_size(), dist.is_main_process()

    tg.manual_seed(args.seed)  # the initial weights (DDP copies rank 0's to every rank)
    model = GPT(model_config(args, tokenizer))
    ddp = DistributedDataParallel(model)
    # This rank's own streams: which windows it sees, and its dropout masks. In a world of 1
    # they are those of a single process: batches from default_rng(seed), and dropout
    # continuing the generator that made the weights.
    batch_rng = rank_generator(args.seed)
    if world_size > 1:
        tg.manual_seed(seed_for_rank(args.seed))
    if args.zero:
        optimizer = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=AdamW,
                                            lr=args.lr, weight_decay=args.weight_decay)
    else:
        optimizer = AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    last_path, best_path = args.out_dir / LAST_CHECKPOINT, args.out_dir / BEST_CHECKPOINT
    step, best_val, train_seconds = 0, math.inf, 0.0
    if args.resume:  # every rank reads the checkpoint
        resumed_from = resume_checkpoint(args.out_dir)  # an earlier version's run: last.npz
        checkpoint = resume_gpt(resumed_from, model, tokenizer, optimizer,
                                generators={"batches": batch_rng})
        step, best_val = checkpoint["step"], checkpoint["extra"]["best_val_loss"]
        # The clock continues too, so ms/step and tokens/s describe the whole run.
        train_seconds = checkpoint["extra"].get("train_seconds", 0.0)
        restarted = restore_streams(checkpoint, resumed_from, batch_rng, args.seed)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    if is_main:
        log = RunLogger(args.out_dir / "metrics.csv", append=args.resume)
        log.write_config({**config, "vocab_size": tokenizer.vocab_size,
                          "parameters": model.num_parameters(), "world_size": world_size})
    # tqdm.write prints above the progress bar instead of through it.
    say = tqdm.write if is_main and not args.quiet else (lambda *a: None)
    say(f"{args.data.name}: {len(splits['train']):,} training and {len(splits['val']):,} "
        f"validation tokens; {tokenizer}")
    say(f"GPT with {model.num_parameters():,} parameters; initial loss should be near "
        f"ln({tokenizer.vocab_size:,}) = {math.log(tokenizer.vocab_size):.3f}")
    if world_size > 1:
        shares = " + ".join(str(rank_batch_size(args.batch_size, r)) for r in range(world_size))
        say(f"data parallel on {world_size} ranks{' with ZeRO-1' if args.zero else ''}: the "
            f"{args.batch_size} windows of a step are drawn {shares}")
    if args.resume:
        say(f"resumed from {resumed_from} at step {step} (best validation loss {best_val:.4f})")
        if restarted:
            say(restarted)

    def evaluate_and_save(step: int, train_seconds: float) -> dict | None:
        """On rank 0: the losses, a row of metrics and the checkpoints (None on other ranks)."""
        nonlocal best_val
        # First the collectives, in which every rank takes part.
        streams = gather_stream_states(batch_rng)
        if args.zero:
            optimizer.consolidate_state_dict(to=0)
        if not is_main:
            return None
        losses = estimate_loss(model, splits, args.batch_size, args.eval_iters, args.seed)
        improved = losses["val"] < best_val
        best_val = min(best_val, losses["val"])
        log.log(step=step, train_loss=losses["train"], val_loss=losses["val"], lr=args.lr,
                train_seconds=round(train_seconds, 3))
        save = dict(model=model, tokenizer=tokenizer, optimizer=optimizer, step=step,
                    training=config, generators={"batches": batch_rng},
                    extra={"best_val_loss": best_val, "train_seconds": train_seconds,
                           "world_size": world_size, "rank_streams": streams})
        save_gpt_checkpoint(last_path, **save)
        if improved:
            save_gpt_checkpoint(best_path, **save)
        say(f"step {step:5d}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}"
            f"{'  (best)' if improved else ''}")
        return losses

    # The training loop: forward -> loss -> backward -> update, with evaluations in between.
    start_step = step
    bar = progress(total=args.max_iters - start_step, desc="train",
                   disable=True if args.quiet or not is_main else None)
    windows = rank_batch_size(args.batch_size)  # this rank's share of the batch
    while step < args.max_iters:
        if step % args.eval_interval == 0 and not (args.resume and step == start_step):
            evaluate_and_save(step, train_seconds)
        t0 = time.perf_counter()
        x, y = get_batch(splits["train"], windows, args.context_length, batch_rng)
        _, loss = ddp(x, y)                       # forward and loss
        optimizer.zero_grad()
        loss.backward()                           # backward
        if args.zero:  # each rank receives the averaged gradient of its 1/N of the parameters
            optimizer.reduce_gradients(num_samples=windows)
            if args.grad_clip > 0:
                optimizer.clip_grad_norm_(args.grad_clip)
        else:  # the gradients of the whole batch, on every rank
            ddp.sync_gradients(num_samples=windows)
            if args.grad_clip > 0:
                clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()                          # update
        train_seconds += time.perf_counter() - t0
        step += 1
        bar.update(1)
        bar.set_postfix(loss=loss.item())
    bar.close()
    # Always finish with an evaluation (the loop evaluates before a step, never after the last).
    losses = evaluate_and_save(step, train_seconds)
    if not is_main:
        return {"steps": step, "model": model, "tokenizer": tokenizer}
    log.plot(args.out_dir / "loss.png", x="step", ys=["train_loss", "val_loss"],
             title=f"tiny GPT on {args.data.name} ({args.vocab} vocabulary)")

    # Speed over the whole run (train_seconds continues across --resume).
    tokens_per_second = step * args.batch_size * args.context_length / max(train_seconds, 1e-9)
    summary = {"steps": step, "train_loss": losses["train"], "val_loss": losses["val"],
               "best_val_loss": best_val, "vocab": args.vocab,
               "vocab_size": tokenizer.vocab_size, "parameters": model.num_parameters(),
               "train_seconds": train_seconds,
               "ms_per_step": 1000 * train_seconds / max(step, 1),
               "tokens_per_second": tokens_per_second}
    log.write_summary(summary)
    resumed = f" ({step - start_step} since --resume)" if args.resume else ""
    say(f"{step} steps{resumed} in {train_seconds:.1f} s of training: "
        f"{summary['ms_per_step']:.0f} ms/step, {tokens_per_second:,.0f} tokens/s")
    say(f"checkpoints: {last_path} (step {step}) and {best_path} (val loss {best_val:.4f})")
    say(f"run folder: {args.out_dir} (config.json, metrics.csv, summary.json, loss.png)")
    return {**summary, "model": model, "tokenizer": tokenizer}


def main(argv=None) -> None:
    args = parse_args(argv)
    summary = train(args)
    if args.sample_tokens > 0 and dist.is_main_process():
        model, tokenizer = summary["model"], summary["tokenizer"]
        prompt = tokenizer.encode(args.prompt, what="the prompt")[None, :]
        ids = model.generate(prompt, args.sample_tokens, temperature=args.temperature,
                             top_k=args.top_k, rng=np.random.default_rng(args.seed))
        print(f"\n--- sample ({args.sample_tokens} tokens, prompt {args.prompt!r}) ---")
        print(tokenizer.decode(ids[0]))


if __name__ == "__main__":
    main()
