"""Sample text from a trained tiny GPT.

    python examples/generate.py --checkpoint runs/gpt/best.npz --prompt "ROMEO:" \\
        --max-new-tokens 200 --temperature 0.8 --top-k 50 --seed 0

The checkpoint rebuilds the model (its config) and the tokenizer (its vocabulary mode and
mapping). The prompt is encoded, then tokens are sampled one at a time: the model reads at most
its last ``context_length`` tokens, the logits of the last position are divided by the
temperature, all but the ``top_k`` most likely tokens are dropped, and the next token is drawn
from the softmax of the rest -- in eval mode, without building a graph.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from tinygrad_lite.models.gpt import load_gpt
from tinygrad_lite.train.cli import (existing_file, make_parser, non_negative_float,
                                     non_negative_int, positive_int)


def build_parser() -> argparse.ArgumentParser:
    p = make_parser(__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=existing_file, default="runs/gpt/best.npz",
                   help="a checkpoint written by train_gpt.py or finetune_gpt.py")
    p.add_argument("--prompt", default="\n",
                   help="English or Chinese text to continue (default: %(default)r)")
    p.add_argument("--max-new-tokens", type=non_negative_int, default=200,
                   help="tokens to generate after the prompt")
    p.add_argument("--temperature", type=non_negative_float, default=1.0,
                   help="divides the logits: < 1 sharper, > 1 flatter; 0 picks the likeliest "
                        "token")
    p.add_argument("--top-k", type=positive_int, default=None,
                   help="sample among the k likeliest tokens (None: all of them)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sampling")
    return p


def main(argv=None) -> str:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        model, tokenizer, checkpoint = load_gpt(args.checkpoint)
        prompt = tokenizer.encode(args.prompt, what="the prompt")
    except ValueError as e:  # not a GPT checkpoint, or a compact vocabulary lacking a token
        p.error(str(e))
    print(f"{args.checkpoint}: step {checkpoint['step']}, {model.num_parameters():,} "
          f"parameters, {tokenizer}", file=sys.stderr)
    ids = model.generate(prompt[None, :], args.max_new_tokens, temperature=args.temperature,
                         top_k=args.top_k, rng=np.random.default_rng(args.seed))
    text = tokenizer.decode(ids[0])
    print(text)
    return text


if __name__ == "__main__":
    main()
