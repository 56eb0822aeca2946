"""Fine-tune a trained tiny GPT on another corpus, with the lower layers frozen.

    python examples/finetune_gpt.py --checkpoint runs/gpt/best.npz \\
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
initialised as a fresh model's rows are. Known tokens keep their ids and rows. Either way the new tokens' embedding rows are untrained (an
English model never saw Chinese) and stay frozen with the rest of the embedding, so the model
adapts through its upper blocks and its output layer -- as fine-tuning with a frozen embedding
does in both cases.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from pathlib import Path

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite.models.gpt import estimate_loss, load_gpt, save_gpt_checkpoint
from tinygrad_lite.optim import AdamW
from tinygrad_lite.text import check_split_length, get_batch, split_tokens
from tinygrad_lite.train import RunLogger, progress

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=Path("runs/gpt/best.npz"))
    p.add_argument("--data", type=Path, default=REPO / "data" / "tang_poems.txt")
    p.add_argument("--freeze-blocks", type=int, default=3,
                   help="freeze the embedding and this many blocks from the bottom")
    p.add_argument("--max-iters", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--eval-iters", type=int, default=10)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--out-dir", type=Path, default=Path("runs/finetune"))
    p.add_argument("--sample-tokens", type=int, default=100)
    p.add_argument("--prompt", default="床前明月光，")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def freeze(model, num_blocks: int) -> None:
    """requires_grad = False for the token embedding and the first ``num_blocks`` blocks."""
    if not 0 <= num_blocks <= len(model.blocks):
        raise ValueError(f"--freeze-blocks must be in 0..{len(model.blocks)} (the model has "
                         f"{len(model.blocks)} blocks), got {num_blocks}")
    model.token_embedding.requires_grad_(False)
    for block in model.blocks[:num_blocks]:
        block.requires_grad_(False)


def finetune(args) -> dict:
    model, tokenizer, _ = load_gpt(args.checkpoint)
    say = (lambda *a: None) if args.quiet else functools.partial(print, flush=True)
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
    say(f"validation loss on {args.data.name} after {args.max_iters} steps ({seconds:.1f} s): "
        f"{after:.4f} (before: {before:.4f})")
    path = save_gpt_checkpoint(args.out_dir / "finetuned.npz", model, tokenizer, optimizer,
                               step=args.max_iters, training={"finetuned_from":
                                                              str(args.checkpoint)})
    say(f"saved {path}")
    return {"val_before": before, "val_after": after, "added_tokens": added, "model": model,
            "tokenizer": tokenizer}


def main(argv=None) -> None:
    args = parse_args(argv)
    result = finetune(args)
    if args.sample_tokens > 0:
        model, tokenizer = result["model"], result["tokenizer"]
        try:
            prompt = tokenizer.encode(args.prompt, what="the prompt")
        except ValueError as e:
            sys.exit(str(e))
        ids = model.generate(prompt[None, :], args.sample_tokens, top_k=50,
                             rng=np.random.default_rng(args.seed))
        print(f"\n--- sample (prompt {args.prompt!r}) ---\n{tokenizer.decode(ids[0])}")


if __name__ == "__main__":
    main()
