"""Fine-tune a trained tiny GPT on another corpus, with the lower layers frozen.

    python examples/finetune_gpt.py --checkpoint runs/gpt/best.safetensors \\
        --data data/tang_poems.txt --freeze-blocks 3 --max-iters 200

What is frozen: the token embedding and the first ``--freeze-blocks`` Transformer blocks get
``requires_grad = False``, so backward computes no gradient for them and the optimizer is given
only the parameters that still train (the upper blocks, the final LayerNorm and the output
layer). The validation loss on the new corpus is reported before and after.

The vocabulary. A model only has rows for the tokens its vocabulary holds: a ``full`` one the
cl100k ids up to the largest in its training corpus, a ``compact`` one only the tokens of that
corpus (tiny Shakespeare's compact vocabulary holds 5 of the Tang poems' 788 tokens). So the
vocabulary is *extended* first: the new corpus's missing ids are appended (for ``full``, the ids
up to the new corpus's largest), and the embedding and output layer grow by as many rows,
initialised as a fresh model's rows are. Known tokens keep their ids and rows. Either way the
new tokens' embedding rows are untrained (an English model never saw Chinese) and stay frozen
with the rest of the embedding, so the model adapts through its upper blocks and its output
layer -- as fine-tuning with a frozen embedding does in both cases.

The run folder (``--out-dir``) gets config.json, metrics.csv (the training loss per step, the
validation loss before and after), summary.json, loss.png and ``finetuned.safetensors``; an existing run
there is never replaced without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite.train.language_model import estimate_loss, load_gpt, save_gpt_checkpoint
from tinygrad_lite.optim import AdamW
from tinygrad_lite.text import check_split_length, get_batch, split_tokens
from tinygrad_lite.train import RunLogger, progress
from tinygrad_lite.train.cli import (add_run_folder_flags, check_run_folder, existing_file,
                                     make_parser, non_negative_float, non_negative_int,
                                     positive_float, positive_int, text_file)
from tinygrad_lite.train.logger import RUN_FILES
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent


OUTPUTS = RUN_FILES + ("finetuned.safetensors",)  # what a run writes into --out-dir


def build_parser() -> argparse.ArgumentParser:
    p = make_parser(__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=existing_file, default="runs/gpt/best.safetensors",
                   help="the trained model to start from (written by train_gpt.py)")
    p.add_argument("--data", type=text_file, default=str(REPO / "data" / "tang_poems.txt"),
                   help="UTF-8 text file of the new corpus; first 90%% trains, last 10%% "
                        "validates")
    p.add_argument("--freeze-blocks", type=non_negative_int, default=3,
                   help="freeze the embedding and this many blocks from the bottom")
    p.add_argument("--max-iters", type=positive_int, default=200, help="optimizer steps")
    p.add_argument("--batch-size", type=positive_int, default=2, help="windows per step")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="AdamW learning rate")
    p.add_argument("--weight-decay", type=non_negative_float, default=0.01,
                   help="AdamW's decoupled weight decay")
    p.add_argument("--eval-iters", type=positive_int, default=10,
                   help="validation batches before and after fine-tuning")
    p.add_argument("--seed", type=non_negative_int, default=1337,
                   help="seed of the new vocabulary rows and of the batches")
    add_run_folder_flags(p, "runs/finetune")
    p.add_argument("--sample-tokens", type=non_negative_int, default=100,
                   help="tokens to generate at the end (0: no sample)")
    p.add_argument("--prompt", default="床前明月光，", help="start of the sample at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no log lines")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    """The arguments, each checked, and checked together (against the checkpoint's model and
    vocabulary), before anything is trained."""
    p = build_parser()
    args = p.parse_args(argv)
    try:
        model, tokenizer, _ = load_gpt(args.checkpoint)
        freeze(model, args.freeze_blocks)
        tokenizer, _ = tokenizer.extended(args.data.read_text(encoding="utf-8"))
        splits = split_tokens(tokenizer.encode(args.data.read_text(encoding="utf-8"),
                                               what=f"the corpus {args.data}"))
        for name, tokens in splits.items():
            check_split_length(tokens, model.config.context_length, name)
        if args.sample_tokens > 0:
            tokenizer.encode(args.prompt, what="the prompt")
    except ValueError as e:  # CheckpointError is a ValueError too
        p.error(str(e))
    check_run_folder(p, args, OUTPUTS)
    return args


def freeze(model, num_blocks: int) -> None:
    """requires_grad = False for the token embedding and the first ``num_blocks`` blocks."""
    if not 0 <= num_blocks <= len(model.blocks):
        raise ValueError(f"argument --freeze-blocks: must be in 0..{len(model.blocks)} (the "
                         f"model has {len(model.blocks)} blocks), got {num_blocks}")
    model.token_embedding.requires_grad_(False)
    for block in model.blocks[:num_blocks]:
        block.requires_grad_(False)


def finetune(args) -> dict:
    model, tokenizer, _ = load_gpt(args.checkpoint)
    # tqdm.write prints above the progress bar instead of through it.
    say = (lambda *a: None) if args.quiet else tqdm.write
    text = args.data.read_text(encoding="utf-8")
    tokenizer, added = tokenizer.extended(text)
    if added:
        say(f"the {tokenizer.mode} vocabulary lacks {added} ids of {args.data.name}: extended to "
            f"{tokenizer.vocab_size:,} ids (new rows initialised like a fresh model's)")
        tg.manual_seed(args.seed)  # the new rows' initial values
        model.resize_vocabulary(tokenizer.vocab_size)
    splits = split_tokens(tokenizer.encode(text, what=f"the corpus {args.data}"))
    for name, tokens in splits.items():
        check_split_length(tokens, model.config.context_length, name)

    freeze(model, args.freeze_blocks)
    trainable = [p for p in model.parameters() if p.requires_grad]
    say(f"{model.num_parameters():,} parameters, {sum(p.numel() for p in trainable):,} "
        f"trainable (embedding and {args.freeze_blocks} of {len(model.blocks)} blocks frozen)")
    optimizer = AdamW(trainable, lr=args.lr, weight_decay=args.weight_decay)

    val_only = {"val": splits["val"]}
    before = estimate_loss(model, val_only, args.batch_size, args.eval_iters, args.seed)["val"]
    say(f"validation loss on {args.data.name} before fine-tuning: {before:.4f} "
        f"(ln V = {math.log(tokenizer.vocab_size):.3f})")

    tg.manual_seed(args.seed)
    batch_rng = np.random.default_rng(args.seed)
    log = RunLogger(args.out_dir / "metrics.csv")
    log.write_config({**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                      "vocab_size": tokenizer.vocab_size, "added_tokens": added,
                      "trainable_parameters": sum(p.numel() for p in trainable)})
    log.log(step=0, train_loss="", val_loss=before)  # the columns: val_loss only at the ends
    bar = progress(total=args.max_iters, desc="finetune", disable=True if args.quiet else None)
    t0 = time.perf_counter()
    for step in range(args.max_iters):
        x, y = get_batch(splits["train"], args.batch_size, model.config.context_length,
                         batch_rng)
        _, loss = model(x, y)        # forward and loss
        optimizer.zero_grad()
        loss.backward()              # backward (no gradients for the frozen parameters)
        optimizer.step()             # update the trainable parameters
        log.log(step=step + 1, train_loss=loss.item())
        bar.update(1)
        bar.set_postfix(loss=loss.item())
    bar.close()
    seconds = time.perf_counter() - t0

    after = estimate_loss(model, val_only, args.batch_size, args.eval_iters, args.seed)["val"]
    log.log(step=args.max_iters, val_loss=after)
    log.plot(args.out_dir / "loss.png", "step", ["train_loss", "val_loss"],
             title=f"fine-tuning on {args.data.name}")
    log.write_summary({"steps": args.max_iters, "val_loss_before": before, "val_loss": after,
                       "train_loss": loss.item(), "added_tokens": added,
                       "train_seconds": seconds,
                       "ms_per_step": 1000 * seconds / args.max_iters})
    say(f"validation loss on {args.data.name} after {args.max_iters} steps ({seconds:.1f} s): "
        f"{after:.4f} (before: {before:.4f})")
    path = save_gpt_checkpoint(args.out_dir / "finetuned.safetensors", model, tokenizer, optimizer,
                               step=args.max_iters, training={"finetuned_from":
                                                              str(args.checkpoint)})
    say(f"run folder: {args.out_dir} (config.json, metrics.csv, summary.json, loss.png, "
        f"{path.name})")
    return {"val_before": before, "val_after": after, "added_tokens": added, "model": model,
            "tokenizer": tokenizer}


def main(argv=None) -> None:
    args = parse_args(argv)
    result = finetune(args)
    if args.sample_tokens > 0:
        model, tokenizer = result["model"], result["tokenizer"]
        prompt = tokenizer.encode(args.prompt, what="the prompt")  # checked by parse_args
        ids = model.generate(prompt[None, :], args.sample_tokens, top_k=50,
                             rng=np.random.default_rng(args.seed))
        print(f"\n--- sample (prompt {args.prompt!r}) ---\n{tokenizer.decode(ids[0])}")


if __name__ == "__main__":
    main()
