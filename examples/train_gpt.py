"""Train the tiny GPT on a text file, then print a generated sample.

    python examples/train_gpt.py                      # reference settings, tiny Shakespeare
    python examples/train_gpt.py --vocab compact      # only the tokens of the corpus (8x smaller)
    python examples/train_gpt.py --resume             # continue from <out-dir>/last.npz

The loop is the four steps of every example -- forward, loss, backward, update -- on random
windows of the training text (``get_batch``). Every ``--eval-interval`` steps the mean loss over
``--eval-iters`` batches of each split is measured in eval mode without building a graph, logged
to ``<out-dir>/metrics.csv`` (and drawn to ``loss.png`` at the end), and the model is
checkpointed: ``last.npz`` always, ``best.npz`` when the validation loss improves. The run folder
also gets ``config.json`` (the settings) and ``summary.json`` (final losses, speed); a second run
into the same folder is refused unless it says ``--resume`` or ``--overwrite``.
A checkpoint holds the model, its config, the tokenizer (vocabulary mode and mapping), the
optimizer state, the step and the random-generator states, so ``--resume`` continues exactly as
if the run had not stopped.
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from pathlib import Path

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite.models.gpt import (GPT, GPTConfig, check_resumable, estimate_loss,
                                      resume_gpt, save_gpt_checkpoint)
from tinygrad_lite.nn.utils import clip_grad_norm_
from tinygrad_lite.optim import AdamW
from tinygrad_lite.text import Tokenizer, check_split_length, get_batch, split_tokens
from tinygrad_lite.train import RunLogger, progress
from tinygrad_lite.train.cli import (add_run_folder_flags, check_run_folder, make_parser,
                                     non_negative_float, non_negative_int, positive_float,
                                     positive_int, probability, text_file)
from tinygrad_lite.train.logger import RUN_FILES
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent


OUTPUTS = RUN_FILES + ("best.npz", "last.npz")  # what a run writes into --out-dir


def build_parser() -> argparse.ArgumentParser:
    p = make_parser(__doc__.split("\n\n")[0])
    p.add_argument("--data", type=text_file, default=str(REPO / "data" / "tinyshakespeare.txt"),
                   help="UTF-8 text file; first 90%% trains, last 10%% validates")
    p.add_argument("--vocab", choices=["full", "compact"], default="full",
                   help="full: every cl100k token; compact: only the tokens of --data")
    p.add_argument("--max-iters", type=positive_int, default=500,
                   help="optimizer steps in total (counting those before a --resume)")
    p.add_argument("--batch-size", type=positive_int, default=2, help="windows per step")
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
    """The arguments, each checked, and checked together, before anything is trained."""
    p = build_parser()
    args = p.parse_args(argv)
    check_run_folder(p, args, OUTPUTS)
    try:
        tokenizer, splits = load_corpus(args.data, args.vocab)
        config = model_config(args, tokenizer)
        for name, tokens in splits.items():
            check_split_length(tokens, args.context_length, name)
        if args.sample_tokens > 0:  # a compact vocabulary may lack the prompt's tokens
            tokenizer.encode(args.prompt, what="the prompt")
        if args.resume:  # the same model and vocabulary as the run it continues
            check_resumable(args.out_dir / "last.npz", config, tokenizer)
    except ValueError as e:  # CheckpointError is a ValueError too
        p.error(str(e))
    return args


def model_config(args, tokenizer: Tokenizer) -> GPTConfig:
    return GPTConfig(vocab_size=tokenizer.vocab_size, context_length=args.context_length,
                     d_model=args.d_model, num_blocks=args.num_blocks,
                     num_heads=args.num_heads, dropout=args.dropout)


def train(args) -> dict:
    """Run the training described by ``args``; return a summary (losses, speed, paths)."""
    tokenizer, splits = load_corpus(args.data, args.vocab)

    tg.manual_seed(args.seed)  # the initial weights and the dropout masks
    batch_rng = np.random.default_rng(args.seed)  # which windows each training step sees
    model = GPT(model_config(args, tokenizer))
    optimizer = AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    last_path, best_path = args.out_dir / "last.npz", args.out_dir / "best.npz"
    step, best_val, train_seconds = 0, math.inf, 0.0
    if args.resume:
        checkpoint = resume_gpt(last_path, model, tokenizer, optimizer,
                                generators={"batches": batch_rng})
        step, best_val = checkpoint["step"], checkpoint["extra"]["best_val_loss"]
        # The clock continues too, so ms/step and tokens/s describe the whole run.
        train_seconds = checkpoint["extra"].get("train_seconds", 0.0)
    log = RunLogger(args.out_dir / "metrics.csv", append=args.resume)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    log.write_config({**config, "vocab_size": tokenizer.vocab_size,
                      "parameters": model.num_parameters()})
    # tqdm.write prints above the progress bar instead of through it.
    say = (lambda *a: None) if args.quiet else tqdm.write
    say(f"{args.data.name}: {len(splits['train']):,} training and {len(splits['val']):,} "
        f"validation tokens; {tokenizer}")
    say(f"GPT with {model.num_parameters():,} parameters; initial loss should be near "
        f"ln({tokenizer.vocab_size:,}) = {math.log(tokenizer.vocab_size):.3f}")
    if args.resume:
        say(f"resumed from {last_path} at step {step} (best validation loss {best_val:.4f})")

    def evaluate_and_save(step: int, train_seconds: float) -> dict:
        nonlocal best_val
        losses = estimate_loss(model, splits, args.batch_size, args.eval_iters, args.seed)
        improved = losses["val"] < best_val
        best_val = min(best_val, losses["val"])
        log.log(step=step, train_loss=losses["train"], val_loss=losses["val"], lr=args.lr,
                train_seconds=round(train_seconds, 3))
        save = dict(model=model, tokenizer=tokenizer, optimizer=optimizer, step=step,
                    training=config, generators={"batches": batch_rng},
                    extra={"best_val_loss": best_val, "train_seconds": train_seconds})
        save_gpt_checkpoint(last_path, **save)
        if improved:
            save_gpt_checkpoint(best_path, **save)
        say(f"step {step:5d}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}"
            f"{'  (best)' if improved else ''}")
        return losses

    # The training loop: forward -> loss -> backward -> update, with evaluations in between.
    start_step = step
    bar = progress(total=args.max_iters - start_step, desc="train",
                   disable=True if args.quiet else None)
    losses = None
    while step < args.max_iters:
        if step % args.eval_interval == 0 and not (args.resume and step == start_step):
            losses = evaluate_and_save(step, train_seconds)
        t0 = time.perf_counter()
        x, y = get_batch(splits["train"], args.batch_size, args.context_length, batch_rng)
        _, loss = model(x, y)                     # forward and loss
        optimizer.zero_grad()
        loss.backward()                           # backward
        if args.grad_clip > 0:
            clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()                          # update
        train_seconds += time.perf_counter() - t0
        step += 1
        bar.update(1)
        bar.set_postfix(loss=loss.item())
    bar.close()
    if losses is None or step != start_step:  # always finish with an evaluation at the end
        losses = evaluate_and_save(step, train_seconds)
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
    if args.sample_tokens > 0:
        model, tokenizer = summary["model"], summary["tokenizer"]
        prompt = tokenizer.encode(args.prompt, what="the prompt")[None, :]
        ids = model.generate(prompt, args.sample_tokens, temperature=args.temperature,
                             top_k=args.top_k, rng=np.random.default_rng(args.seed))
        print(f"\n--- sample ({args.sample_tokens} tokens, prompt {args.prompt!r}) ---")
        print(tokenizer.decode(ids[0]))


if __name__ == "__main__":
    main()
