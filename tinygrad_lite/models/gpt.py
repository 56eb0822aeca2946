"""A tiny GPT: a decoder-only Transformer that predicts the next token.

Built only from the package's layers (``tinygrad_lite.nn``)::

    ids (B, T) --token_embedding--> (B, T, d) --+ sinusoidal positions, dropout-->
        num_blocks x TransformerBlock:  x = x + attn(ln1(x));  x = x + ffn(ln2(x))
        (causal multi-head self-attention; ffn = Linear(d, 4d) -> ReLU -> Linear(4d, d))
    --ln_f--> --lm_head--> logits (B, T, vocab_size)

``GPT.forward(idx, targets)`` also returns the mean cross-entropy of the next-token predictions;
``GPT.generate`` samples a continuation. The checkpoint helpers at the end save and restore a
model together with its ``GPTConfig`` and tokenizer (vocabulary mode and mapping), using the
package's checkpoint format (``tinygrad_lite/train/checkpoint.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..nn import functional as F
from ..tensor import Tensor
from ..text import Tokenizer, get_batch
from ..train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


@dataclass
class GPTConfig:
    """Everything needed to rebuild the model (saved in every checkpoint).
    The defaults are the reference hyperparameters of the project brief."""

    vocab_size: int
    context_length: int = 128   # the longest sequence the model reads (T)
    d_model: int = 80           # width of every token's vector
    num_blocks: int = 6
    num_heads: int = 4          # d_model is split into num_heads heads of d_model/num_heads
    dropout: float = 0.1

    def __post_init__(self):
        for name in ("vocab_size", "context_length", "d_model", "num_blocks", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GPTConfig: {name} must be a positive integer, got {value!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"GPTConfig: d_model {self.d_model} must be divisible by num_heads "
                             f"{self.num_heads}")
        if self.d_model % 2:
            raise ValueError(f"GPTConfig: d_model must be even for the sine/cosine positional "
                             f"encoding, got {self.d_model}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "GPTConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"GPTConfig: unknown settings {unknown} (known: {sorted(known)})")
        return cls(**values)


class GPT(nn.Module):
    """The decoder-only Transformer described at the top of this file."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.token_embedding = nn.Embedding(config.vocab_size, d)
        self.position_encoding = nn.SinusoidalPositionalEncoding(
            d, max_len=config.context_length, dropout=config.dropout)
        self.blocks = nn.ModuleList(
            nn.TransformerBlock(d, config.num_heads, dropout=config.dropout, causal=True)
            for _ in range(config.num_blocks))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, config.vocab_size)

    def _check_ids(self, idx, what: str) -> np.ndarray:
        ids = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
        if ids.dtype.kind not in "iu" or ids.ndim != 2:
            raise ValueError(f"GPT: {what} must be integer token ids of shape (batch, time), got "
                             f"shape {ids.shape} and dtype {ids.dtype}")
        if ids.shape[1] > self.config.context_length:
            raise ValueError(f"GPT: {what} has {ids.shape[1]} positions, more than "
                             f"context_length={self.config.context_length}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.config.vocab_size):
            raise ValueError(f"GPT: {what} holds ids {ids.min()}..{ids.max()}, outside the "
                             f"vocabulary 0..{self.config.vocab_size - 1}")
        return ids.astype(np.int64, copy=False)

    def hidden_states(self, idx, kv_caches: list | None = None) -> Tensor:
        """The final-LayerNorm output (B, T, d_model): what the head turns into logits.
        With ``kv_caches`` (one ``nn.KVCache`` per block, generation only), ``idx`` holds the
        positions that follow the cached ones."""
        ids = self._check_ids(idx, "idx")
        past = 0 if kv_caches is None else kv_caches[0].length
        if past + ids.shape[1] > self.config.context_length:
            raise ValueError(f"GPT: {past} cached + {ids.shape[1]} new positions exceed "
                             f"context_length={self.config.context_length}")
        x = self.token_embedding(ids)                                  # (B, T, d)
        x = self.position_encoding(x, start=past)                      # (B, T, d)
        for i, block in enumerate(self.blocks):
            x = block(x) if kv_caches is None else block(x, kv_cache=kv_caches[i])  # (B, T, d)
        return self.ln_f(x)                                            # (B, T, d)

    def forward(self, idx, targets=None):
        """Logits (B, T, vocab_size) for the token after each position; with ``targets``
        (B, T) also the mean cross-entropy loss: ``(logits, loss)``."""
        logits = self.lm_head(self.hidden_states(idx))
        if targets is None:
            return logits
        targets = self._check_ids(targets, "targets")
        b, t, v = logits.shape
        if targets.shape != (b, t):
            raise ValueError(f"GPT: targets of shape {targets.shape} do not match idx of shape "
                             f"{(b, t)}")
        loss = F.cross_entropy(logits.reshape(b * t, v), targets.reshape(b * t))
        return logits, loss

    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, rng: np.random.Generator | None = None,
                 top_p: float | None = None, use_cache: bool = True) -> np.ndarray:
        """Append ``max_new_tokens`` sampled tokens to each row of ``idx`` (B, T0) and return
        the ids (B, T0 + max_new_tokens).

        Each step reads at most the last ``context_length`` tokens and samples the next token
        from the last position's logits (``sample_next``): ``temperature`` a finite number >= 0
        (0: greedy, always the most likely token), ``top_k`` keeps the k most likely tokens
        (more than the vocabulary means all, as nanoGPT's ``min(top_k, V)``), ``top_p`` in
        (0, 1] the smallest set of most likely tokens whose probability reaches p (nucleus
        sampling). Runs in eval mode (no dropout) without building a graph; the previous mode is
        restored afterwards.

        The KV cache (``use_cache``): every block keeps the keys and values of the positions it
        has seen, so a new token costs one position of compute instead of the whole window. The
        positions are absolute (the sinusoidal table), so once the sequence is longer than
        ``context_length`` and the window slides, every cached key sits at another position
        than it was computed for: an exact cache must then recompute the window, and every step
        past the window costs as much as without the cache. ``use_cache=False`` recomputes the
        window at every step; both give the same logits (to float32 rounding).
        """
        ids = np.atleast_2d(idx.data if isinstance(idx, Tensor) else np.asarray(idx))
        self._check_ids(ids[:, -self.config.context_length:], "idx")
        ids = ids.astype(np.int64, copy=False)
        if not _is_int(max_new_tokens) or max_new_tokens < 0:
            raise ValueError(f"generate: max_new_tokens must be an integer >= 0, got "
                             f"{max_new_tokens!r}")
        check_sampling_settings("generate", temperature, top_k, top_p)
        if ids.shape[1] == 0:
            raise ValueError("generate: the prompt needs at least one token")
        rng = rng if rng is not None else np.random.default_rng()
        ctx = self.config.context_length
        caches = None  # one nn.KVCache per block
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                for _ in range(max_new_tokens):
                    if use_cache and caches is not None and caches[0].length < ctx:
                        context = ids[:, -1:]    # only the newest token: the rest is cached
                    else:                        # the first step, or the window slid: all of it
                        context = ids[:, -ctx:]
                        caches = [nn.KVCache(ctx) for _ in self.blocks] if use_cache else None
                    last = self.hidden_states(context, caches)[:, -1]      # (B, d)
                    logits = self.lm_head(last).data.astype(np.float64)    # (B, V)
                    next_ids = sample_next(logits, temperature, top_k, rng, top_p)  # (B, 1)
                    ids = np.concatenate([ids, next_ids], axis=1)
        finally:
            self.train(was_training)
        return ids

    def resize_vocabulary(self, vocab_size: int) -> None:
        """Grow the embedding and the head to ``vocab_size`` rows (for a compact vocabulary
        extended with a new corpus's tokens). Existing rows are kept; new rows are initialised
        as a fresh model's would be, so the model behaves exactly as before on known tokens."""
        old = self.config.vocab_size
        if vocab_size < old:
            raise ValueError(f"resize_vocabulary can only grow the vocabulary ({old} -> "
                             f"{vocab_size})")
        if vocab_size == old:
            return
        embedding, head = nn.Embedding(vocab_size, self.config.d_model), \
            nn.Linear(self.config.d_model, vocab_size)
        with no_grad():
            embedding.weight[:old] = self.token_embedding.weight
            head.weight[:old] = self.lm_head.weight
            head.bias[:old] = self.lm_head.bias
        embedding.weight.requires_grad = self.token_embedding.weight.requires_grad
        self.token_embedding, self.lm_head = embedding, head
        self.config = dataclasses.replace(self.config, vocab_size=vocab_size)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_sampling_settings(function: str, temperature, top_k, top_p=None) -> None:
    """Raise a TypeError/ValueError naming ``function`` for a temperature that is not a finite
    number >= 0, a ``top_k`` that is not a positive integer (or None), or a ``top_p`` that is
    not a number in (0, 1] (or None)."""
    if not isinstance(temperature, (int, float, np.integer, np.floating)) or \
            isinstance(temperature, (bool, np.bool_)):
        raise TypeError(f"{function}: temperature must be a number, got {temperature!r}")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"{function}: temperature must be a finite number >= 0 (0: greedy), got "
                         f"{temperature!r}")
    if top_k is not None and not _is_int(top_k):
        raise TypeError(f"{function}: top_k must be an integer >= 1 or None (all tokens), got "
                        f"{top_k!r}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"{function}: top_k must be >= 1 or None (all tokens), got {top_k!r}")
    if top_p is not None:
        if not isinstance(top_p, (int, float, np.integer, np.floating)) or \
                isinstance(top_p, (bool, np.bool_)):
            raise TypeError(f"{function}: top_p must be a number in (0, 1] or None, got "
                            f"{top_p!r}")
        if not 0 < top_p <= 1:
            raise ValueError(f"{function}: top_p must be in (0, 1] (1: all tokens), got "
                             f"{top_p!r}")


def sample_next(logits: np.ndarray, temperature: float, top_k: int | None,
                rng: np.random.Generator, top_p: float | None = None) -> np.ndarray:
    """One token id per row of ``logits`` (B, V), as a (B, 1) int64 array.

    ``top_k`` keeps the k largest logits; ``top_p`` then keeps the smallest set of the most
    likely tokens whose probability (after the temperature) adds up to at least p -- the
    likeliest token always stays.

    The maximum is subtracted *before* dividing by the temperature: ``(logits - max) / T`` is
    <= 0 everywhere and 0 at the likeliest token, so for a tiny ``T`` (1e-320) the other tokens
    get probability exp(-inf) = 0 and sampling becomes greedy, as the limit T -> 0 should --
    dividing first would give inf - inf = NaN and a meaningless token.
    """
    check_sampling_settings("sample_next", temperature, top_k, top_p)
    if temperature == 0:
        return logits.argmax(axis=-1)[:, None]
    if top_k is not None and top_k < logits.shape[-1]:
        kth_largest = np.partition(logits, -top_k, axis=-1)[:, -top_k][:, None]
        logits = np.where(logits < kth_largest, -np.inf, logits)
    with np.errstate(over="ignore"):  # (-5 / 1e-320 = -inf is the intended value)
        scaled = (logits - logits.max(axis=-1, keepdims=True)) / temperature
    probs = np.exp(scaled)
    if top_p is not None and top_p < 1:
        order = np.argsort(-probs, axis=-1, kind="stable")             # likeliest first
        sorted_probs = np.take_along_axis(probs, order, axis=-1)
        before = np.cumsum(sorted_probs, axis=-1) - sorted_probs       # mass of the likelier
        drop = before >= top_p * sorted_probs.sum(axis=-1, keepdims=True)
        np.put_along_axis(probs, order, np.where(drop, 0.0, sorted_probs), axis=-1)
    cdf = np.cumsum(probs, axis=-1)
    # Inverse-CDF sampling: the first id whose cumulative probability exceeds u ~ U(0, total).
    u = rng.random((logits.shape[0], 1)) * cdf[:, -1:]
    choice = (cdf <= u).sum(axis=-1)
    return np.minimum(choice, logits.shape[-1] - 1)[:, None].astype(np.int64)


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


# -- checkpoints ---------------------------------------------------------------------------------

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
