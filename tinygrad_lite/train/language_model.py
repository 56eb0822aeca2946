"""Training a language model (the tiny GPT) with its tokenizer: the loss estimate of a run's
evaluations, and checkpoints that carry the model's config and the tokenizer with the weights,
so that generation, fine-tuning and ``--resume`` rebuild exactly what was trained.

The model itself (``tinygrad_lite/models/gpt.py``) knows nothing of files or tokenizers.
"""

from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from ..models.gpt import GPT, GPTConfig
from ..text import Tokenizer, get_batch
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def estimate_loss(model: GPT, splits: dict, batch_size: int, eval_iters: int,
                  seed: int = 0) -> dict:
    """Mean loss over ``eval_iters`` random batches of each split (``{"train": ids, ...}``),
    in eval mode (no dropout) and without building a graph.

    The batches come from a generator seeded the same way at every call, so repeated
    evaluations during training score the same windows (the curve shows the model changing,
    not the sample) and evaluating never changes the random numbers training draws.
    """
    was_training = model.training
    model.eval()
    losses = {}
    try:
        with no_grad():
            for name, tokens in splits.items():
                rng = np.random.default_rng([seed, 1])
                batch_losses = [
                    model(*get_batch(tokens, batch_size, model.config.context_length, rng))[1]
                    .item() for _ in range(eval_iters)]
                losses[name] = float(np.mean(batch_losses))
    finally:
        model.train(was_training)
    return losses


# -- checkpoints -------------------------------------------------------------------------------

def save_gpt_checkpoint(path, model: GPT, tokenizer: Tokenizer, optimizer=None, step=None,
                        training: dict | None = None, generators: dict | None = None,
                        extra: dict | None = None):
    """Write model, config, tokenizer (mode and mapping), optimizer, step and RNG states."""
    if tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} ids but the model "
                         f"{model.config.vocab_size}: they do not belong together")
    return save_checkpoint(
        path, model=model, optimizer=optimizer, step=step,
        hyperparameters={"gpt": model.config.to_dict(), "training": training or {}},
        extra={"tokenizer": tokenizer.state_dict(), **(extra or {})}, generators=generators)


def _saved_parts(checkpoint: dict, source: str) -> tuple[GPTConfig, Tokenizer]:
    try:
        config = GPTConfig.from_dict(checkpoint["hyperparameters"]["gpt"])
        tokenizer = Tokenizer.from_state_dict(checkpoint["extra"]["tokenizer"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{source} is not a GPT checkpoint (no usable model config or "
                              f"tokenizer: {e})") from None
    return config, tokenizer


def load_gpt(path) -> tuple[GPT, Tokenizer, dict]:
    """Rebuild the model and tokenizer saved at ``path`` (for generation and fine-tuning).
    Returns ``(model, tokenizer, checkpoint)``; RNG states are not restored."""
    checkpoint = load_checkpoint(path, restore_rng=False)
    config, tokenizer = _saved_parts(checkpoint, str(path))
    model = GPT(config)
    try:
        model.load_state_dict(checkpoint["model"])
    except ValueError as e:
        raise CheckpointError(f"{path}: the saved weights do not fit its own config: {e}"
                              ) from None
    return model, tokenizer, checkpoint


def check_resumable(path, config: GPTConfig, tokenizer: Tokenizer) -> dict:
    """Read the checkpoint at ``path`` (restoring nothing) and raise ``CheckpointError`` unless
    it was made with ``config`` and the vocabulary of ``tokenizer``; return it."""
    source = str(path)
    checkpoint = load_checkpoint(path, restore_rng=False)
    saved_config, saved_tokenizer = _saved_parts(checkpoint, source)
    if saved_tokenizer.mode != tokenizer.mode:
        raise CheckpointError(
            f"{source} was trained with the {saved_tokenizer.mode} vocabulary "
            f"({saved_tokenizer.vocab_size:,} tokens), but this model uses the {tokenizer.mode} "
            f"vocabulary ({tokenizer.vocab_size:,} tokens): the embedding and output layers "
            f"cannot be exchanged. Use --vocab {saved_tokenizer.mode}.")
    if tokenizer.mode == "compact" and not np.array_equal(saved_tokenizer.vocab_ids,
                                                          tokenizer.vocab_ids):
        raise CheckpointError(
            f"{source} has a different compact vocabulary ({saved_tokenizer.vocab_size:,} "
            f"tokens) from this one ({tokenizer.vocab_size:,}): it was made from another corpus")
    if saved_config != config:
        different = {k: (v, getattr(config, k)) for k, v in saved_config.to_dict().items()
                     if getattr(config, k) != v}
        raise CheckpointError(f"{source} was made with other model settings (saved, here): "
                              f"{different}")
    return checkpoint


def resume_gpt(path, model: GPT, tokenizer: Tokenizer, optimizer=None,
               generators: dict | None = None) -> dict:
    """Load the checkpoint at ``path`` into an existing model (and optimizer), restoring the RNG
    states, after checking that it was made with the same config and the same vocabulary."""
    check_resumable(path, model.config, tokenizer)
    return load_checkpoint(path, model=model, optimizer=optimizer, generators=generators)
