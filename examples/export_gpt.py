"""Export a trained tiny GPT for other runtimes: checkpoint -> ONNX file, checked with ONNX Runtime.

    python examples/export_gpt.py --checkpoint runs/gpt/best.npz            # -> runs/gpt/best.onnx
    python examples/generate.py --checkpoint runs/gpt/best.npz --engine onnxruntime

The ONNX file (``tinygrad_lite.onnx.export``, opset 17) maps token ids ``idx`` (int64, shape
(batch, time)) to ``logits`` (float32, (batch, time, vocab_size)) for any batch size and any
length up to the model's ``context_length``: one file for the prompt and for every step of
generation. The script prints the file's size and then checks it: ONNX Runtime and the engine
compute the logits of the same random batch of full-length sequences, and the largest
difference is printed. The tokenizer stays in the checkpoint (``generate.py`` reads it there).
Needs the export extra: ``pip install ".[export]"``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tinygrad_lite import Tensor, no_grad
from tinygrad_lite.train.language_model import load_gpt
from tinygrad_lite.train.cli import existing_file, make_parser, non_negative_int, positive_int

# The graph's names and its dynamic axes: batch and time may change from call to call.
INPUT_NAME, OUTPUT_NAME = "idx", "logits"
DYNAMIC_AXES = {INPUT_NAME: {0: "batch", 1: "time"}, OUTPUT_NAME: {0: "batch", 1: "time"}}


def build_parser() -> argparse.ArgumentParser:
    p = make_parser(__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=existing_file, default="runs/gpt/best.npz",
                   help="a checkpoint written by train_gpt.py or finetune_gpt.py")
    p.add_argument("--onnx", type=Path, default=None,
                   help="where to write the ONNX file (default: the checkpoint's path with "
                        "the suffix .onnx)")
    p.add_argument("--opset", type=positive_int, default=17, help="ONNX opset version (>= 17)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the random tokens of the verification batch")
    return p


def onnx_path_for(checkpoint: Path) -> Path:
    """Where export_gpt.py writes the ONNX file of ``checkpoint`` by default (and where
    generate.py --engine onnxruntime looks for it)."""
    return Path(checkpoint).with_suffix(".onnx")


def max_logit_difference(model, onnx_path: Path, ids: np.ndarray) -> float:
    """max |ONNX Runtime - engine| over the logits of ``ids`` (the engine in eval mode)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ours = session.run([OUTPUT_NAME], {INPUT_NAME: ids})[0]
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            reference = model(ids).data
    finally:
        model.train(was_training)
    return float(np.abs(ours.astype(np.float64) - reference).max())


def main(argv=None) -> float:
    p = build_parser()
    args = p.parse_args(argv)
    try:
        from tinygrad_lite.onnx import export
        import onnxruntime  # noqa: F401  (needed for the check, so refused before any work)
    except ImportError as e:
        p.error(f"exporting needs the export extra (onnx, onnxruntime): pip install "
                f"'.[export]' ({e})")
    try:
        model, tokenizer, checkpoint = load_gpt(args.checkpoint)
    except ValueError as e:  # not a GPT checkpoint
        p.error(str(e))
    config = model.config
    print(f"{args.checkpoint}: step {checkpoint['step']}, {model.num_parameters():,} "
          f"parameters, {tokenizer}", file=sys.stderr)
    rng = np.random.default_rng(args.seed)

    # -- safetensors weights: the safetensors work of issue 13 writes the .safetensors file
    # -- (weights + config + tokenizer) here, and prints its size like the ONNX file's below.

    onnx_path = args.onnx or onnx_path_for(args.checkpoint)
    example = rng.integers(0, config.vocab_size, (2, min(8, config.context_length)))
    export(model, Tensor(example), onnx_path, input_names=[INPUT_NAME],
           output_names=[OUTPUT_NAME], dynamic_axes=DYNAMIC_AXES, opset_version=args.opset)
    print(f"{onnx_path}: {onnx_path.stat().st_size / 1e6:.2f} MB (ONNX opset {args.opset}; "
          f"inputs idx (batch, time <= {config.context_length}), outputs logits (batch, "
          f"time, {config.vocab_size}))")

    sample = rng.integers(0, config.vocab_size, (2, config.context_length))
    difference = max_logit_difference(model, onnx_path, sample)
    print(f"verification: max |onnxruntime - tinygrad_lite| = {difference:.2e} over the logits "
          f"of 2 x {config.context_length} random tokens")
    return difference


if __name__ == "__main__":
    main()
