"""Hessian-vector products by double backward, checked three ways.

The Hessian H of a loss L(θ) is the matrix of second derivatives. Forming it costs P backward
passes for P parameters, but the product H v for one vector v costs just two, because

    H v = ∇_θ (∇_θ L · v)      (v held constant)

1. ``g = tg.grad(L, params, create_graph=True)``: the gradient, *recorded* as a graph;
2. ``tg.grad(sum(g_i · v_i), params)``: the gradient of the scalar gᵀv is H v.

(``tg.grad`` always returns a tuple, one gradient per parameter, as torch.autograd.grad does.)
Both problems below are in float64; each check prints its max error and tolerance:

* logistic regression, L(w) = mean(softplus(Xw) - y Xw), whose Hessian is known in closed form,
  H = Xᵀ diag(p(1 - p)) X / n with p = sigmoid(Xw): H v against it; the explicit Hessian built
  column by column from H e_j against it; H v against central differences of gradients,
  (∇L(w + h v) - ∇L(w - h v)) / 2h;
* a small tanh MLP with a mean squared error, whose Hessian has no short formula: H v against
  central differences of gradients; the explicit Hessian (from HVPs with unit vectors) against
  one built from finite differences of gradients, its symmetry, and H v = (explicit H) v.

    python examples/hessian_vector_product.py [--samples 200] [--features 4] [--hidden 5]

Exit status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite import Tensor

ANALYTIC_TOL = 1e-10  # two exact computations of the same numbers: only rounding differs
FINITE_DIFFERENCE_TOL = 1e-6  # central differences with step 1e-5: error ~ h² + 1e-16 / h


# --------------------------------------------------------------------------------------------
# Hessian-vector products and what they are checked against
# --------------------------------------------------------------------------------------------

def hvp(loss_fn, params: list, vectors: list) -> tuple:
    """H v by double backward: the gradient of (∇L · v), one tensor per parameter."""
    loss = loss_fn(*params)
    grads = tg.grad(loss, params, create_graph=True)  # a graph we can differentiate again
    grad_dot_v = None
    for g, v in zip(grads, vectors):
        term = (g * v).sum()
        grad_dot_v = term if grad_dot_v is None else grad_dot_v + term
    return tg.grad(grad_dot_v, params)


def flat(tensors) -> np.ndarray:
    return np.concatenate([t.numpy().reshape(-1) for t in tensors])


def unflat(vector: np.ndarray, params: list) -> list:
    """Split a flat vector into tensors shaped like ``params``."""
    pieces, start = [], 0
    for p in params:
        pieces.append(Tensor(vector[start:start + p.numel()].reshape(p.shape)))
        start += p.numel()
    return pieces


def flat_hvp(loss_fn, params: list, v: np.ndarray) -> np.ndarray:
    return flat(hvp(loss_fn, params, unflat(v, params)))


def hessian_from_hvps(loss_fn, params: list) -> np.ndarray:
    """The explicit P x P Hessian, column j = H e_j (one double backward per column)."""
    size = sum(p.numel() for p in params)
    return np.stack([flat_hvp(loss_fn, params, np.eye(size)[j]) for j in range(size)], axis=1)


def gradient_at(loss_fn, params: list, flat_params: np.ndarray) -> np.ndarray:
    """∇L at other parameter values (fresh leaves, so ``params`` are untouched)."""
    moved = [t.requires_grad_(True) for t in unflat(flat_params, params)]
    return flat(tg.grad(loss_fn(*moved), moved))


def finite_difference_hvp(loss_fn, params: list, v: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """(∇L(θ + h v) - ∇L(θ - h v)) / 2h: H v from first derivatives only."""
    theta = flat(params)
    return (gradient_at(loss_fn, params, theta + h * v) -
            gradient_at(loss_fn, params, theta - h * v)) / (2 * h)


# --------------------------------------------------------------------------------------------
# the two problems
# --------------------------------------------------------------------------------------------

def logistic_regression(samples: int, features: int, rng):
    """Data, the loss, the parameter w, and the closed-form Hessian at w."""
    X = rng.standard_normal((samples, features))                 # (n, d)
    y = (rng.random(samples) < 0.5).astype(np.float64)          # (n,)
    w = Tensor(0.5 * rng.standard_normal(features), requires_grad=True)  # (d,)
    Xt, yt = Tensor(X), Tensor(y)

    def loss_fn(w):
        z = Xt @ w                                               # (n,) logits
        return (z.softplus() - yt * z).mean()                    # binary cross-entropy

    p = 1 / (1 + np.exp(-X @ w.numpy()))                         # (n,)
    hessian = X.T @ (X * (p * (1 - p))[:, None]) / samples       # (d, d)
    return loss_fn, [w], hessian


def tanh_mlp(samples: int, features: int, hidden: int, rng):
    """A 2-layer tanh MLP regressing a smooth target; the loss and its four parameters."""
    x = Tensor(rng.standard_normal((samples, features)))        # (n, d)
    target = Tensor(np.sin(x.numpy().sum(axis=1, keepdims=True)))  # (n, 1)
    params = [Tensor(rng.standard_normal(shape) / np.sqrt(shape[0]), requires_grad=True)
              for shape in [(features, hidden), (hidden,), (hidden, 1), (1,)]]

    def loss_fn(w1, b1, w2, b2):
        h = (x @ w1 + b1).tanh()                                 # (n, hidden)
        prediction = h @ w2 + b2                                 # (n, 1)
        return ((prediction - target) ** 2).mean()

    return loss_fn, params


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------

def check(name: str, actual: np.ndarray, expected: np.ndarray, tolerance: float) -> bool:
    """Print the max error, relative to the size of ``expected`` (at least 1)."""
    error = np.max(np.abs(actual - expected)) / max(1.0, np.max(np.abs(expected)))
    ok = error <= tolerance
    print(f"check {name:<52} max error {error:9.2e}  (tolerance {tolerance:.0e})  "
          f"{'ok' if ok else 'FAILED'}")
    return ok


def check_logistic_regression(args, rng) -> list:
    loss_fn, params, analytic = logistic_regression(args.samples, args.features, rng)
    print(f"logistic regression: {args.samples} samples, {args.features} features; "
          f"H = Xᵀ diag(p(1-p)) X / n")
    v = rng.standard_normal(analytic.shape[0])
    explicit = hessian_from_hvps(loss_fn, params)
    return [
        check("H v (double backward) = analytic H v", flat_hvp(loss_fn, params, v),
              analytic @ v, ANALYTIC_TOL),
        check("explicit H (HVPs of unit vectors) = analytic H", explicit, analytic,
              ANALYTIC_TOL),
        check("H v = finite differences of gradients", flat_hvp(loss_fn, params, v),
              finite_difference_hvp(loss_fn, params, v), FINITE_DIFFERENCE_TOL),
    ]


def check_tanh_mlp(args, rng) -> list:
    loss_fn, params = tanh_mlp(args.samples, args.features, args.hidden, rng)
    size = sum(p.numel() for p in params)
    print(f"\ntanh MLP {args.features}-{args.hidden}-1: {size} parameters in {len(params)} "
          f"tensors, mean squared error")
    v = rng.standard_normal(size)
    explicit = hessian_from_hvps(loss_fn, params)
    by_differences = np.stack([finite_difference_hvp(loss_fn, params, e) for e in np.eye(size)],
                              axis=1)
    return [
        check("H v = finite differences of gradients", flat_hvp(loss_fn, params, v),
              finite_difference_hvp(loss_fn, params, v), FINITE_DIFFERENCE_TOL),
        check("explicit H = finite-difference Hessian", explicit, by_differences,
              FINITE_DIFFERENCE_TOL),
        check("explicit H is symmetric", explicit, explicit.T, ANALYTIC_TOL),
        check("H v = (explicit H) v", flat_hvp(loss_fn, params, v), explicit @ v, ANALYTIC_TOL),
    ]


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "a non-negative integer")


def _int_at_least(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=positive_int, default=200,
                        help="data points of each problem (default 200)")
    parser.add_argument("--features", type=positive_int, default=4,
                        help="input features of each problem (default 4)")
    parser.add_argument("--hidden", type=positive_int, default=5,
                        help="hidden units of the MLP (default 5)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the data and of the random vectors (default 0)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    results = check_logistic_regression(args, rng) + check_tanh_mlp(args, rng)
    passed = sum(results)
    print(f"\n{passed} of {len(results)} checks passed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
