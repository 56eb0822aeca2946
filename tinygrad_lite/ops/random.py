"""Random integers and sampling from categorical distributions (no gradients: the results are
integer indices). Both draw from the package generator (``tinygrad_lite.manual_seed``)."""

from __future__ import annotations

import math

import numpy as np

from ..checks import check_dtype, check_flag, check_number, check_shape
from ..tensor import Tensor, get_rng


def _generator(generator, op: str) -> np.random.Generator:
    """The generator to draw from: the one given, or the package generator."""
    if generator is None:
        return get_rng()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"{op}: generator must be a np.random.Generator (or None for the "
                        f"package generator), got {type(generator).__name__}")
    return generator


def randint(*args, size=None, dtype=np.int64, generator: np.random.Generator | None = None,
            requires_grad: bool = False) -> Tensor:
    """Uniform integers in [low, high): ``randint(high, size)`` or ``randint(low, high, size)``,
    as torch.randint (int64 by default; a float dtype gives whole numbers as floats)."""
    if size is None and args and isinstance(args[-1], (tuple, list)):
        args, size = args[:-1], args[-1]
    if size is None or len(args) not in (1, 2):
        raise TypeError("randint() takes randint(high, size) or randint(low, high, size), with "
                        "size a tuple, e.g. randint(0, 10, (3,))")
    low, high = (0, args[0]) if len(args) == 1 else args
    low = check_number("randint", "low", low, -math.inf, integer=True)
    high = check_number("randint", "high", high, -math.inf, integer=True)
    if low >= high:
        raise RuntimeError(f"randint: expects low < high, but got low={low} >= high={high}")
    size = check_shape("randint", (size,))
    dtype = check_dtype("randint", np.int64 if dtype is None else dtype)
    if check_flag("randint", "requires_grad", requires_grad) and dtype.kind != "f":
        raise RuntimeError(f"randint: only Tensors of floating point dtype can require "
                           f"gradients; dtype is {dtype}")
    out = Tensor._make(_generator(generator, "randint").integers(low, high, size).astype(dtype))
    return out.requires_grad_(True) if requires_grad else out


def _check_probabilities(probs: np.ndarray, num_samples, replacement: bool) -> None:
    """The checks torch.multinomial makes, with its messages (all RuntimeError)."""
    if probs.dtype.kind != "f":
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got "
                           f"{probs.dtype}")
    if probs.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got shape {probs.shape}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
        raise TypeError(f"multinomial: num_samples must be an int, got {num_samples!r}")
    categories = probs.shape[-1]
    if categories == 0:
        raise RuntimeError(f"multinomial: prob_dist has no categories (shape {probs.shape})")
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample n_sample <= 0 samples (got "
                           f"{num_samples})")
    if not replacement and num_samples > categories:
        raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples "
                           f"without replacement ({num_samples} > {categories})")
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise RuntimeError("multinomial: probability tensor contains either `inf`, `nan` or "
                           "element < 0")
    rows = probs.reshape(-1, categories)
    if (rows.sum(axis=1) <= 0).any():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of probabilities "
                           "<= 0)")
    if not replacement and ((rows > 0).sum(axis=1) < num_samples).any():
        raise RuntimeError(f"multinomial: invalid multinomial distribution (with "
                           f"replacement=False, not enough non-zero categories to sample "
                           f"{num_samples})")


def multinomial(input, num_samples: int, replacement: bool = False, *,
                generator: np.random.Generator | None = None) -> Tensor:
    """Indices of categories drawn with probabilities proportional to the rows of ``input`` (1-D:
    one distribution; 2-D: one per row), as torch.multinomial; int64, shape (num_samples,) or
    (rows, num_samples). Without replacement a category is drawn at most once per row."""
    probs = input.data if isinstance(input, Tensor) else np.asarray(input)
    replacement = check_flag("multinomial", "replacement", replacement)
    rng = _generator(generator, "multinomial")
    _check_probabilities(probs, num_samples, replacement)
    rows = probs.reshape(-1, probs.shape[-1]).astype(np.float64)
    rows = rows / rows.sum(axis=1, keepdims=True)
    if replacement:  # inverse CDF: the first category whose cumulative probability exceeds u
        cdf = np.cumsum(rows, axis=1)
        u = rng.random((rows.shape[0], num_samples))
        out = np.array([np.searchsorted(c, row_u, side="right") for c, row_u in zip(cdf, u)],
                       dtype=np.int64).reshape(u.shape)  # (reshape: a batch of 0 rows too)
        # rounding can leave cdf[-1] just below 1: never pick past the last non-zero category
        last = rows.shape[1] - 1 - np.argmax(rows[:, ::-1] > 0, axis=1)
        out = np.minimum(out, last[:, None])
    else:  # p / Exponential(1) keys: the largest k are a draw without replacement (as torch)
        keys = rows / rng.exponential(size=rows.shape)
        out = np.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    out = out.astype(np.int64).reshape(probs.shape[:-1] + (num_samples,))
    return Tensor._make(out)
