"""A tiny GPT: a decoder-only Transformer that predicts the next token.

Built only from the package's layers (``tinygrad_lite.nn``)::

    ids (B, T) --token_embedding--> (B, T, d) --+ sinusoidal positions, dropout-->
        num_blocks x TransformerBlock:  x = x + attn(ln1(x));  x = x + ffn(ln2(x))
        (causal multi-head self-attention; ffn = Linear(d, 4d) -> ReLU -> Linear(4d, d))
    --ln_f--> --lm_head--> logits (B, T, vocab_size)

``GPT.forward(idx, targets)`` also returns the mean cross-entropy of the next-token predictions;
``GPT.generate`` samples a continuation (with a KV cache; the sampling rules are in
``models/sampling.py``). Evaluation and checkpoints with the tokenizer belong to training:
``tinygrad_lite/train/language_model.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..nn import functional as F
from ..tensor import Tensor
from .sampling import check_sampling_settings, is_int, sample_next


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
        logits = self.lm_head(self.hidden_states(idx))                 # (B, T, V)
        if targets is None:
            return logits
        targets = self._check_ids(targets, "targets")                  # (B, T)
        b, t, v = logits.shape
        if targets.shape != (b, t):
            raise ValueError(f"GPT: targets of shape {targets.shape} do not match idx of shape "
                             f"{(b, t)}")
        loss = F.cross_entropy(logits.reshape(b * t, v), targets.reshape(b * t))  # ()
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
        if not is_int(max_new_tokens) or max_new_tokens < 0:
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
