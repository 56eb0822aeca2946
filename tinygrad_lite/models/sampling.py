"""Choosing the next token from a model's logits: greedy, temperature, top-k and top-p
(nucleus) sampling, and the checks of those settings (``GPT.generate`` and the ONNX Runtime
path of examples/generate.py share them)."""

from __future__ import annotations

import math

import numpy as np


def is_int(value) -> bool:
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
    if top_k is not None and not is_int(top_k):
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
