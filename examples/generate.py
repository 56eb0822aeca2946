"""Sample text from a trained tiny GPT.

    python examples/generate.py --checkpoint runs/gpt/best.safetensors --prompt "ROMEO:" \\
        --max-new-tokens 200 --temperature 0.8 --top-k 50 --seed 0
    python examples/generate.py --checkpoint runs/gpt/best.safetensors --engine onnxruntime ...

The checkpoint rebuilds the model (its config) and the tokenizer (its vocabulary mode and
mapping). The prompt is encoded, then tokens are sampled one at a time: the model reads at most
its last ``context_length`` tokens, the logits of the last position are divided by the
temperature, all but the ``top_k`` most likely tokens are dropped, and the next token is drawn
from the softmax of the rest -- in eval mode, without building a graph.

``--engine onnxruntime`` computes the logits with ONNX Runtime from the ONNX file that
examples/export_gpt.py wrote for the checkpoint (``--onnx``; the tokenizer still comes from the
checkpoint) and samples with the same rules (``sample_next``): greedy text (``--temperature 0``)
is the same with both engines, and sampled text too unless a random draw falls within the
~1e-7 by which their logits differ. Needs the export extra: ``pip install ".[export]"``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tinygrad_lite.models.sampling import check_sampling_settings, sample_next
from tinygrad_lite.train.language_model import load_gpt
from tinygrad_lite.train.cli import (existing_file, make_parser, non_negative_float,
                                     non_negative_int, positive_int)


def build_parser() -> argparse.ArgumentParser:
    p = make_parser(__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=existing_file, default="runs/gpt/best.safetensors",
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
    p.add_argument("--engine", choices=("tinygrad_lite", "onnxruntime"), default="tinygrad_lite",
                   help="what computes the logits: this package, or ONNX Runtime running the "
                        "ONNX file of the checkpoint")
    p.add_argument("--onnx", type=Path, default=None,
                   help="with --engine onnxruntime: the ONNX file (default: the checkpoint's "
                        "path with the suffix .onnx, where export_gpt.py writes it)")
    return p


def generate_with_onnxruntime(session, idx: np.ndarray, max_new_tokens: int,
                              context_length: int, temperature: float = 1.0,
                              top_k: int | None = None,
                              rng: np.random.Generator | None = None) -> np.ndarray:
    """``GPT.generate`` with ONNX Runtime computing the logits: each step feeds the last
    ``context_length`` tokens (the file takes any length up to it) and samples the next token
    from the last position's logits with the engine's ``sample_next``."""
    check_sampling_settings("generate_with_onnxruntime", temperature, top_k)
    rng = rng if rng is not None else np.random.default_rng()
    input_name = session.get_inputs()[0].name
    ids = np.asarray(idx, dtype=np.int64)
    for _ in range(max_new_tokens):
        logits = session.run(None, {input_name: ids[:, -context_length:]})[0]  # (B, T, V)
        ids = np.concatenate([ids, sample_next(logits[:, -1].astype(np.float64), temperature,
                                               top_k, rng)], axis=1)
    return ids


def onnxruntime_session(p: argparse.ArgumentParser, path: Path, vocab_size: int):
    """An ONNX Runtime session of the file at ``path``, after checking that it exists and that
    its logits have the checkpoint's vocabulary (argparse errors otherwise)."""
    try:
        import onnxruntime
    except ImportError:
        p.error("--engine onnxruntime needs ONNX Runtime: pip install '.[export]'")
    if not path.is_file():
        p.error(f"argument --onnx: no such file: {str(path)!r} (write it with "
                f"examples/export_gpt.py)")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception classes: not an ONNX file, ...
        p.error(f"argument --onnx: {str(path)!r} is not a readable ONNX file ({e})")
    vocabulary = session.get_outputs()[0].shape[-1]
    if vocabulary != vocab_size:
        p.error(f"argument --onnx: {str(path)!r} computes logits over {vocabulary} tokens, the "
                f"checkpoint's vocabulary has {vocab_size}: export this checkpoint again")
    return session


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
    rng = np.random.default_rng(args.seed)
    if args.engine == "onnxruntime":
        onnx_path = args.onnx or args.checkpoint.with_suffix(".onnx")
        session = onnxruntime_session(p, onnx_path, model.config.vocab_size)
        print(f"logits from ONNX Runtime: {onnx_path}", file=sys.stderr)
        ids = generate_with_onnxruntime(session, prompt[None, :], args.max_new_tokens,
                                        model.config.context_length, args.temperature,
                                        args.top_k, rng)
    else:
        ids = model.generate(prompt[None, :], args.max_new_tokens,
                             temperature=args.temperature, top_k=args.top_k, rng=rng)
    text = tokenizer.decode(ids[0])
    print(text)
    return text


if __name__ == "__main__":
    main()
