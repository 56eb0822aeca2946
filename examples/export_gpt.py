"""Export a trained tiny GPT for other runtimes: checkpoint -> safetensors weights + ONNX file.

    python examples/export_gpt.py --checkpoint runs/gpt/best.safetensors
        # -> runs/gpt/best.weights.safetensors and runs/gpt/best.onnx
    python examples/generate.py --checkpoint runs/gpt/best.safetensors --engine onnxruntime

The weights file (``tinygrad_lite.weights.save_safetensors``) holds only the model's tensors,
under ``state_dict`` names in PyTorch's layouts, with the model config as JSON in its header
(``"gpt_config"``): what another runtime or a PyTorch twin of the model loads. The training
checkpoint it comes from also holds the optimizer state, the step, the random generators and
the tokenizer. Reloading the weights into a fresh model must give the same logits, bit for bit.

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
import json
import sys
from pathlib import Path

import numpy as np

from tinygrad_lite import Tensor, no_grad
from tinygrad_lite.models.gpt import GPT, GPTConfig
from tinygrad_lite.train.cli import existing_file, make_parser, non_negative_int, positive_int
from tinygrad_lite.train.language_model import load_gpt
from tinygrad_lite.weights import load_safetensors, read_safetensors, save_safetensors

# The graph's names and its dynamic axes: batch and time may change from call to call.
INPUT_NAME, OUTPUT_NAME = "idx", "logits"
DYNAMIC_AXES = {INPUT_NAME: {0: "batch", 1: "time"}, OUTPUT_NAME: {0: "batch", 1: "time"}}


def build_parser() -> argparse.ArgumentParser:
    p = make_parser(__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=existing_file, default="runs/gpt/best.safetensors",
                   help="a checkpoint written by train_gpt.py or finetune_gpt.py")
    p.add_argument("--onnx", type=Path, default=None,
                   help="where to write the ONNX file (default: the checkpoint's path with "
                        "the suffix .onnx)")
    p.add_argument("--weights", type=Path, default=None,
                   help="where to write the weights (default: the checkpoint's path with the "
                        "suffix .weights.safetensors)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (without it they are never touched)")
    p.add_argument("--opset", type=positive_int, default=17, help="ONNX opset version (>= 17)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the random tokens of the verification batch")
    return p


def weights_path_for(checkpoint: Path) -> Path:
    """Where export_gpt.py writes the weights of ``checkpoint`` by default."""
    return Path(checkpoint).with_suffix(".weights.safetensors")


def onnx_path_for(checkpoint: Path) -> Path:
    """Where export_gpt.py writes the ONNX file of ``checkpoint`` by default (and where
    generate.py --engine onnxruntime looks for it)."""
    return Path(checkpoint).with_suffix(".onnx")


def max_logit_difference(model, onnx_path: Path, ids: np.ndarray) -> float:
    """max |ONNX Runtime - engine| over the logits of ``ids`` (the engine in eval mode)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ours = session.run([OUTPUT_NAME], {INPUT_NAME: ids})[0]
    return float(np.abs(ours.astype(np.float64) - logits_of(model, ids)).max())


def logits_of(model, ids: np.ndarray) -> np.ndarray:
    """The engine's logits of ``ids`` in eval mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            return model(ids).data
    finally:
        model.train(was_training)


def load_safetensors_metadata(path: Path) -> str:
    """The model config JSON in the weights file's header."""
    _, metadata = read_safetensors(path)
    return metadata["gpt_config"]


def main(argv=None) -> float:
    p = build_parser()
    args = p.parse_args(argv)
    onnx_path = args.onnx or onnx_path_for(args.checkpoint)
    weights_path = args.weights or weights_path_for(args.checkpoint)
    existing = [str(path) for path in (weights_path, onnx_path) if path.exists()]
    if existing and not args.overwrite:
        p.error(f"{' and '.join(existing)} already exist; give --overwrite to replace them, or "
                f"--weights/--onnx to write elsewhere")
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

    save_safetensors(model, weights_path, metadata={"gpt_config": json.dumps(config.to_dict())})
    reloaded = GPT(GPTConfig.from_dict(json.loads(load_safetensors_metadata(weights_path))))
    load_safetensors(reloaded, weights_path)
    ids = rng.integers(0, config.vocab_size, (2, config.context_length))
    same = np.array_equal(logits_of(reloaded, ids), logits_of(model, ids))
    print(f"{weights_path}: {weights_path.stat().st_size / 1e6:.2f} MB (safetensors, "
          f"{len(model.state_dict())} tensors); reloaded logits "
          f"{'bit-identical' if same else 'DIFFERENT'}")
    if not same:
        raise SystemExit("export_gpt: the reloaded weights give other logits")

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
