"""Multi-head attention, Transformer encoder layers and positional encodings (batch first:
every sequence tensor has shape (batch, time, features))."""

from __future__ import annotations

import math

import numpy as np

from ..autograd import is_grad_enabled
from ..tensor import Tensor, as_tensor
from . import functional as F
from . import init
from .layers import GELU, Dropout, LayerNorm, Linear, ReLU
from .module import Module, Parameter, Sequential


def causal_mask(t: int, s: int | None = None, past: int = 0) -> np.ndarray:
    """Boolean (t, s) mask, True where query i must NOT see key j because j is in its future.
    Query i sits at position ``past + i`` (``past``: positions already in a KV cache), so it sees
    keys 0 .. past + i."""
    s = t if s is None else s
    return np.triu(np.ones((t, s), dtype=bool), k=1 + past)


class KVCache:
    """The keys and values of the positions a self-attention layer has already seen, so that
    generation computes only the new token's: one per layer, for one batch of sequences.

    ``append(k, v)`` adds the new positions' keys and values (B, H, t, hs) and returns all of
    them so far (B, H, past + t, hs). Room for ``capacity`` positions is allocated once, so a
    step copies only the new position instead of re-concatenating the past.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.length = 0        # positions held
        self._keys = self._values = None  # (B, H, capacity, hs)

    def append(self, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b, h, t, hs = k.shape
        if self._keys is None:
            self._keys = np.empty((b, h, self.capacity, hs), dtype=k.dtype)
            self._values = np.empty_like(self._keys)
        if self.length + t > self.capacity:
            raise ValueError(f"KVCache: {self.length} + {t} positions exceed the capacity "
                             f"{self.capacity}; start a new cache")
        if self._keys.shape[:2] != (b, h) or self._keys.shape[3] != hs:
            raise ValueError(f"KVCache: keys of shape {k.shape} do not match the cache's "
                             f"{self._keys.shape}")
        self._keys[:, :, self.length:self.length + t] = k
        self._values[:, :, self.length:self.length + t] = v
        self.length += t
        return self._keys[:, :, :self.length], self._values[:, :, :self.length]


class MultiHeadAttention(Module):
    """softmax(Q Kᵀ / sqrt(d_head) + mask) V in ``num_heads`` heads, then an output projection.

    Q, K, V are the input(s) times the three blocks of ``in_proj_weight`` (3E, E), as in PyTorch
    (xavier-uniform init, zero biases). ``forward(query, key=None, value=None, attn_mask=None,
    is_causal=None, need_weights=False)``: key and value default to query (self-attention);
    ``attn_mask`` is a boolean (T, S) / (B, T, S) / (B, H, T, S) array, True where attention is
    forbidden, or a float array added to the scores; ``is_causal`` (default: the ``causal`` given
    to the constructor) hides future positions. Returns the output (B, T, E), and the attention
    weights (B, H, T, S) too if ``need_weights``.

    ``kv_cache`` (a ``KVCache``, self-attention without ``attn_mask``, no graph: generation
    only): ``query`` holds only the new positions; their keys and values join the cache and the
    queries attend to every cached position (causally: new position i sits at past + i).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 causal: bool = False, dtype=np.float32):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"MultiHeadAttention: embed_dim {embed_dim} must be divisible by "
                             f"num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.causal = causal
        self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=dtype))
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dtype=dtype)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self.attn_dropout = Dropout(dropout)
        init.xavier_uniform_(self.in_proj_weight)
        if bias:
            init.zeros_(self.out_proj.bias)

    def _project(self, x: Tensor, block: int) -> Tensor:
        """x @ W_blockᵀ + b_block for block 0 (query), 1 (key) or 2 (value)."""
        rows = slice(block * self.embed_dim, (block + 1) * self.embed_dim)
        bias = self.in_proj_bias[rows] if self.in_proj_bias is not None else None
        return F.linear(x, self.in_proj_weight[rows], bias)

    def _split_heads(self, x: Tensor) -> Tensor:
        """(B, T, E) -> (B, H, T, head_dim)"""
        b, t, _ = x.shape
        return x.reshape(b, t, self.num_heads, self.head_dim).transpose(1, 2)

    def _check(self, name: str, x) -> None:
        if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[-1] != self.embed_dim:
            shape = getattr(x, "shape", type(x).__name__)
            raise ValueError(f"MultiHeadAttention: {name} must have shape (batch, time, "
                             f"embed_dim={self.embed_dim}), got {shape}")
        if x.dtype != self.in_proj_weight.dtype:
            raise TypeError(f"MultiHeadAttention: {name} has dtype {x.dtype}, the layer "
                            f"{self.in_proj_weight.dtype}")

    def forward(self, query, key=None, value=None, attn_mask=None, is_causal=None,
                need_weights: bool = False, kv_cache: KVCache | None = None):
        if kv_cache is not None:
            return self._forward_cached(query, kv_cache, is_causal, need_weights,
                                        other_inputs=(key, value, attn_mask))
        self._check("query", query)
        self_attention = key is None and value is None
        key = query if key is None else key
        value = key if value is None else value
        self._check("key", key)
        self._check("value", value)
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(f"MultiHeadAttention: query {query.shape}, key {key.shape} and "
                             f"value {value.shape} need the same batch size, and key and value "
                             f"the same length")
        b, t, e = query.shape
        s = key.shape[1]
        if self_attention:  # one matmul for Q, K and V together
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)  # (B, T, 3E)
            q, k, v = qkv.chunk(3, axis=-1)                                # 3 x (B, T, E)
        else:
            q = self._project(query, 0)                                    # (B, T, E)
            k, v = self._project(key, 1), self._project(value, 2)          # (B, S, E)
        q = self._split_heads(q)                                           # (B, H, T, hs)
        k, v = self._split_heads(k), self._split_heads(v)                  # (B, H, S, hs)

        scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim))  # (B, H, T, S)
        if self.causal if is_causal is None else is_causal:
            scores = scores.masked_fill(causal_mask(t, s), -math.inf)  # (B, H, T, S)
        if attn_mask is not None:
            mask = attn_mask.data if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
            if mask.shape[-2:] != (t, s):
                raise ValueError(f"MultiHeadAttention: attn_mask of shape {mask.shape} does not "
                                 f"end in (query length {t}, key length {s})")
            if mask.dtype == np.bool_:
                scores = scores.masked_fill(mask if mask.ndim != 3 else mask[:, None], -math.inf)
            else:
                additive = mask if mask.ndim != 3 else mask[:, None]
                scores = scores + as_tensor(additive, dtype=scores.dtype)  # (B, H, T, S)
        weights = self.attn_dropout(F.softmax(scores, dim=-1))         # (B, H, T, S)
        out = (weights @ v).transpose(1, 2).reshape(b, t, e)  # (B, T, E): heads side by side
        out = self.out_proj(out)                                       # (B, T, E)
        return (out, weights) if need_weights else out

    def _forward_cached(self, x, cache: KVCache, is_causal, need_weights, other_inputs):
        """Self-attention of the new positions ``x`` (B, t, E) over the cache and themselves.
        The same arithmetic as ``forward`` on the whole sequence, for the last t rows."""
        if any(a is not None for a in other_inputs):
            raise ValueError("MultiHeadAttention: kv_cache works for self-attention without "
                             "key, value or attn_mask")
        if is_grad_enabled():
            raise RuntimeError("MultiHeadAttention: kv_cache is for generation; use it under "
                               "no_grad() (the cached keys and values carry no graph)")
        self._check("query", x)
        b, t, e = x.shape
        past = cache.length
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)      # (B, t, 3E)
        q, k, v = qkv.chunk(3, axis=-1)                                # 3 x (B, t, E)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)  # (B, H, t, hs)
        keys, values = cache.append(k.data, v.data)                    # (B, H, past + t, hs)
        keys, values = as_tensor(keys), as_tensor(values)
        scores = (q @ keys.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim))  # (B, H, t, S)
        if self.causal if is_causal is None else is_causal:
            scores = scores.masked_fill(causal_mask(t, past + t, past=past), -math.inf)  # (B,H,t,S)
        weights = F.softmax(scores, dim=-1)                             # (B, H, t, S)
        out = (weights @ values).transpose(1, 2).reshape(b, t, e)       # (B, t, E)
        out = self.out_proj(out)
        return (out, weights) if need_weights else out

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.attn_dropout.p}, causal={self.causal}")


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward network, each in a residual branch (PyTorch's
    argument names; batch first). Pre-LayerNorm by default (``norm_first=True``):

        x = x + dropout(attn(ln1(x)));   x = x + dropout(ffn(ln2(x)))
    and with ``norm_first=False`` (the original post-LN Transformer):
        x = ln1(x + dropout(attn(x)));   x = ln2(x + dropout(ffn(x)))
    where ffn = Linear(d_model, dim_feedforward) -> activation -> dropout -> Linear(back).
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str = "relu", layer_norm_eps: float = 1e-5,
                 norm_first: bool = True, causal: bool = False, dtype=np.float32):
        super().__init__()
        if activation not in ("relu", "gelu"):
            raise ValueError(f"TransformerEncoderLayer: activation must be 'relu' or 'gelu', got "
                             f"{activation!r}")
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, causal=causal,
                                            dtype=dtype)
        self.ln1 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.ln2 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.ffn = Sequential(Linear(d_model, dim_feedforward, dtype=dtype),
                              ReLU() if activation == "relu" else GELU(),
                              Dropout(dropout),
                              Linear(dim_feedforward, d_model, dtype=dtype))
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def forward(self, x, attn_mask=None, is_causal=None, kv_cache: KVCache | None = None):
        """``kv_cache``: see ``MultiHeadAttention`` (generation: x holds only new positions)."""
        cache = {} if kv_cache is None else {"kv_cache": kv_cache}
        if self.norm_first:
            x = x + self.dropout1(self.self_attn(self.ln1(x), attn_mask=attn_mask,
                                                 is_causal=is_causal, **cache))
            return x + self.dropout2(self.ffn(self.ln2(x)))
        x = self.ln1(x + self.dropout1(self.self_attn(x, attn_mask=attn_mask,
                                                      is_causal=is_causal, **cache)))
        return self.ln2(x + self.dropout2(self.ffn(x)))


class TransformerBlock(TransformerEncoderLayer):
    """The GPT block: a pre-LayerNorm encoder layer with causal self-attention,
    feed-forward width 4·d_model, ReLU."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, d_ff: int | None = None,
                 causal: bool = True, dtype=np.float32):
        super().__init__(d_model, num_heads, dim_feedforward=d_ff or 4 * d_model, dropout=dropout,
                         activation="relu", norm_first=True, causal=causal, dtype=dtype)


def sinusoidal_table(max_len: int, d_model: int) -> np.ndarray:
    """pe[pos, 2i] = sin(pos / 10000^(2i/d_model)), pe[pos, 2i+1] = cos(same angle)."""
    position = np.arange(max_len, dtype=np.float64)[:, None]
    frequency = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-math.log(10000.0) / d_model))
    table = np.zeros((max_len, d_model))
    table[:, 0::2] = np.sin(position * frequency)
    table[:, 1::2] = np.cos(position * frequency[: d_model // 2])
    return table


class SinusoidalPositionalEncoding(Module):
    """x + pe[:T] (fixed sine/cosine table of ``sinusoidal_table``), then dropout.
    The table is a non-persistent buffer: it is rebuilt from the settings, never saved."""

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0, dtype=np.float32):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.register_buffer("pe", Tensor(sinusoidal_table(max_len, d_model).astype(dtype)),
                             persistent=False)
        self.dropout = Dropout(dropout)

    def forward(self, x, start: int = 0):
        """x + pe[start : start + T]: ``start`` > 0 when x continues a sequence (the new
        positions of cached generation)."""
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"SinusoidalPositionalEncoding: expected input (batch, time, "
                             f"d_model={self.d_model}), got {x.shape}")
        if not (isinstance(start, (int, np.integer)) and start >= 0):
            raise ValueError(f"SinusoidalPositionalEncoding: start must be an integer >= 0, got "
                             f"{start!r}")
        if start + x.shape[1] > self.max_len:
            raise ValueError(f"SinusoidalPositionalEncoding: positions up to "
                             f"{start + x.shape[1]} are longer than max_len={self.max_len}")
        return self.dropout(x + self.pe[start:start + x.shape[1]])

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEncoding(Module):
    """x + P[:T] with a learned table P (max_len, d_model), initialised N(0, 1) like Embedding;
    then dropout."""

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.0, dtype=np.float32):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.weight = Parameter(np.empty((max_len, d_model), dtype=dtype))
        init.normal_(self.weight)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"LearnedPositionalEncoding: expected input (batch, time, "
                             f"d_model={self.d_model}), got {x.shape}")
        if x.shape[1] > self.max_len:
            raise ValueError(f"LearnedPositionalEncoding: sequence length {x.shape[1]} is "
                             f"longer than max_len={self.max_len}")
        return self.dropout(x + self.weight[: x.shape[1]])

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"
