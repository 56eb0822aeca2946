"""Random integers and sampling from categorical distributions (no gradients: the results are
integer indices). Both draw from the package generator (``tinygrad_lite.manual_seed``)."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor, get_rng


def _size_arg(size, op: str) -> tuple:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size,)
    if not isinstance(size, (tuple, list)) or not all(
            isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in size):
        raise TypeError(f"{op}: size must be a tuple of non-negative ints, got {size!r}")
    return tuple(int(n) for n in size)


def randint(*args, size=None, dtype=np.int64, generator: np.random.Generator | None = None,
            requires_grad: bool = False) -> Tensor:
    """Uniform integers in [low, high): ``randint(high, size)`` or ``randint(low, high, size)``,
    as torch.randint (int64 by default)."""
    if size is None and args and isinstance(args[-1], (tuple, list)):
        args, size = args[:-1], args[-1]
    if size is None or len(args) not in (1, 2):
        raise TypeError("randint() takes randint(high, size) or randint(low, high, size), with "
                        "size a tuple, e.g. randint(0, 10, (3,))")
    low, high = (0, args[0]) if len(args) == 1 else args
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"randint: {name} must be an int, got {value!r}")
    if low >= high:
        raise RuntimeError(f"randint: expects low < high, but got low={low} >= high={high}")
    if requires_grad:
        raise RuntimeError("randint: only floating-point tensors can require gradients")
    rng = generator if generator is not None else get_rng()
    return Tensor._make(rng.integers(low, high, _size_arg(size, "randint")).astype(dtype))


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
    _check_probabilities(probs, num_samples, replacement)
    rng = generator if generator is not None else get_rng()
    rows = probs.reshape(-1, probs.shape[-1]).astype(np.float64)
    rows = rows / rows.sum(axis=1, keepdims=True)
    if replacement:  # inverse CDF: the first category whose cumulative probability exceeds u
        cdf = np.cumsum(rows, axis=1)
        u = rng.random((rows.shape[0], num_samples))
        out = np.stack([np.searchsorted(c, row_u, side="right") for c, row_u in zip(cdf, u)])
        # rounding can leave cdf[-1] just below 1: never pick past the last non-zero category
        last = rows.shape[1] - 1 - np.argmax(rows[:, ::-1] > 0, axis=1)
        out = np.minimum(out, last[:, None])
    else:  # p / Exponential(1) keys: the largest k are a draw without replacement (as torch)
        keys = rows / rng.exponential(size=rows.shape)
        out = np.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    out = out.astype(np.int64).reshape(probs.shape[:-1] + (num_samples,))
    return Tensor._make(out)
