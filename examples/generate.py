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
from pathlib import Path

import numpy as np

from tinygrad_lite.models.gpt import load_gpt


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=Path("runs/gpt/best.npz"))
    p.add_argument("--prompt", default="\n", help="English or Chinese text to continue")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=1.0, help="0 picks the likeliest token")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest tokens")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    model, tokenizer, checkpoint = load_gpt(args.checkpoint)
    print(f"{args.checkpoint}: step {checkpoint['step']}, {model.num_parameters():,} "
          f"parameters, {tokenizer}", file=sys.stderr)
    try:
        prompt = tokenizer.encode(args.prompt, what="the prompt")
    except ValueError as e:  # a compact vocabulary that lacks some of the prompt's tokens
        p.error(str(e))
    ids = model.generate(prompt[None, :], args.max_new_tokens, temperature=args.temperature,
                         top_k=args.top_k, rng=np.random.default_rng(args.seed))
    text = tokenizer.decode(ids[0])
    print(text)
    return text


if __name__ == "__main__":
    main()
