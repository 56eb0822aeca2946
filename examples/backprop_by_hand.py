"""Backpropagation by hand: a 2-layer MLP's gradients from the chain rule, next to the engine's.

The network, in float64, on N samples of 3 features:

    z     = x · W1 + b1          (N, 4)    x (N, 3), W1 (3, 4), b1 (4,)
    h     = tanh(z)              (N, 4)
    y_hat = h · W2 + b2          (N, 1)    W2 (4, 1), b2 (1,)
    L     = mean((y_hat - y)²)   ()        mean squared error

Walking back from L, one chain-rule step per line (g is dL/dy_hat):

    g   = dL/dy_hat = 2 (y_hat - y) / N
    dW2 = hᵀ · g            db2 = Σ_rows g
    dh  = g · W2ᵀ
    dz  = dh ⊙ (1 - h²)     (tanh' = 1 - tanh²)
    dW1 = xᵀ · dz           db1 = Σ_rows dz

The script computes these in NumPy, runs the same network through tinygrad_lite
(``retain_grad()`` keeps ``.grad`` on y_hat, h and z as well as on the parameters), prints each
hand gradient beside its formula and the largest difference from the engine's, draws the
graph (``viz.draw``) and prints the backward walk (``trace.trace_backward``).

    python examples/backprop_by_hand.py [--samples 4] [--seed 0] [--out runs/backprop_by_hand]

draws the graph to runs/backprop_by_hand/mlp_graph.svg (``--format png`` for a PNG).

Exit status 1 if any hand gradient differs from the engine's by more than 1e-12.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import tinygrad_lite as tg
import tinygrad_lite.nn.functional as F
from tinygrad_lite import viz
from tinygrad_lite.trace import trace_backward, trace_forward

TOLERANCE = 1e-12  # the same float64 arithmetic in another order: only rounding differs
PARAMETER_SHAPES = {"W1": (3, 4), "b1": (4,), "W2": (4, 1), "b2": (1,)}

# name -> (formula, engine tensor whose .grad it is); in the order backward finds them
FORMULAS = {
    "dL/dy_hat": ("2 (y_hat - y) / N", "y_hat"),
    "dW2": ("h^T . g", "W2"),
    "db2": ("sum over rows of g", "b2"),
    "dh": ("g . W2^T", "h"),
    "dz": ("dh * tanh_grad(h) = dh * (1 - h^2)", "z"),
    "dW1": ("x^T . dz", "W1"),
    "db1": ("sum over rows of dz", "b1"),
}


# --------------------------------------------------------------------------------------------
# The data and the parameters (plain NumPy arrays)
# --------------------------------------------------------------------------------------------

def make_problem(samples: int, seed: int) -> tuple:
    """x (N, 3), a target y (N, 1) and the four parameters, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, 3))                       # (N, 3)
    y = np.sin(x.sum(axis=1, keepdims=True))                    # (N, 1)
    params = {name: rng.standard_normal(shape) / np.sqrt(shape[0])
              for name, shape in PARAMETER_SHAPES.items()}
    return x, y, params


# --------------------------------------------------------------------------------------------
# By hand: forward and backward in NumPy
# --------------------------------------------------------------------------------------------

def tanh_grad(h: np.ndarray) -> np.ndarray:
    """d tanh(z)/dz written with the output h = tanh(z): 1 - h²."""
    return 1 - h ** 2


def hand_gradients(x: np.ndarray, y: np.ndarray, params: dict) -> dict:
    """Every gradient of FORMULAS, by the chain rule, from the loss back to the input layer."""
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    n = x.shape[0]
    # forward, keeping what the backward needs
    z = x @ W1 + b1                                             # (N, 4)
    h = np.tanh(z)                                              # (N, 4)
    y_hat = h @ W2 + b2                                         # (N, 1)
    # backward
    g = 2 * (y_hat - y) / n                                     # (N, 1) dL/dy_hat
    dW2 = h.T @ g                                               # (4, 1)
    db2 = g.sum(axis=0)                                         # (1,)
    dh = g @ W2.T                                               # (N, 4)
    dz = dh * tanh_grad(h)                                      # (N, 4)
    dW1 = x.T @ dz                                              # (3, 4)
    db1 = dz.sum(axis=0)                                        # (4,)
    return {"dL/dy_hat": g, "dW2": dW2, "db2": db2, "dh": dh, "dz": dz, "dW1": dW1, "db1": db1}


# --------------------------------------------------------------------------------------------
# By the engine
# --------------------------------------------------------------------------------------------

def engine_forward(x: np.ndarray, y: np.ndarray, params: dict) -> tuple:
    """The same network on Tensors: (loss, {name: tensor}) with every tensor of FORMULAS."""
    tensors = {name: tg.tensor(value, requires_grad=True) for name, value in params.items()}
    xt, yt = tg.tensor(x), tg.tensor(y)
    tensors["z"] = xt @ tensors["W1"] + tensors["b1"]           # (N, 4)
    tensors["h"] = tensors["z"].tanh()                          # (N, 4)
    tensors["y_hat"] = tensors["h"] @ tensors["W2"] + tensors["b2"]  # (N, 1)
    for name in ("z", "h", "y_hat"):  # intermediate tensors drop .grad unless asked to keep it
        tensors[name].retain_grad()
    loss = F.mse_loss(tensors["y_hat"], yt)                     # ()
    return loss, tensors


def compare(hand: dict, tensors: dict) -> list:
    """(name, max |hand - engine|) for every gradient of FORMULAS."""
    return [(name, float(np.max(np.abs(hand[name] - tensors[engine_name].grad.numpy()))))
            for name, (_, engine_name) in FORMULAS.items()]


def print_comparison(hand: dict, tensors: dict) -> int:
    """Each hand gradient beside its formula and the engine's; return how many failed."""
    failed = 0
    for name, difference in compare(hand, tensors):
        formula, engine_name = FORMULAS[name]
        verdict = "ok" if difference <= TOLERANCE else "FAILED"
        failed += verdict != "ok"
        print(f"{name} = {formula}    shape {hand[name].shape}")
        print(_indent("by hand ", hand[name]))
        print(_indent(f"engine  ({engine_name}.grad) ", tensors[engine_name].grad.numpy()))
        print(f"  max |hand - engine| = {difference:.1e}  (tolerance {TOLERANCE:.0e})  "
              f"{verdict}\n")
    return failed


def _indent(title: str, array: np.ndarray) -> str:
    text = np.array2string(array, precision=6, suppress_small=True, max_line_width=100)
    pad = " " * (2 + len(title))
    return "  " + title + text.replace("\n", "\n" + pad)


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------

def positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Derive a 2-layer MLP's gradients by hand with the chain rule, compare them "
                    "with tinygrad_lite's, draw the graph and trace the backward pass.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--samples", type=positive_int, default=4,
                        help="number of samples N in the batch")
    parser.add_argument("--seed", type=nonnegative_int, default=0,
                        help="seed of the data and the initial parameters")
    parser.add_argument("--out", default=os.path.join("runs", "backprop_by_hand"),
                        help="folder for the picture of the graph, mlp_graph.FORMAT; created if missing")
    parser.add_argument("--format", choices=viz.FORMATS, default="svg",
                        help="picture format of the graph")
    parser.add_argument("--engine", choices=("auto", "dot", "matplotlib"), default="auto",
                        help="how to draw: Graphviz's dot, matplotlib, or dot when installed")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    x, y, params = make_problem(args.samples, args.seed)

    with trace_forward():  # the backward table then says which line of this file made each node
        loss, tensors = engine_forward(x, y, params)
    print(f"loss L = {loss.item():.6f}  (N = {args.samples}, float64)\n")
    with trace_backward() as walk:
        loss.backward(retain_graph=True)  # keep the graph to draw it, with its gradients
    hand = hand_gradients(x, y, params)
    failed = print_comparison(hand, tensors)

    print("The backward walk, node by node (|grad in| is the norm of dL/d(node's output)):")
    print(walk.table())
    os.makedirs(args.out, exist_ok=True)
    picture = viz.draw(loss, os.path.join(args.out, f"mlp_graph.{args.format}"),
                       params={name: tensors[name] for name in PARAMETER_SHAPES},
                       max_values=12, engine=args.engine)
    print(f"\ngraph drawn to {picture}")

    checks = len(FORMULAS)
    print(f"{checks - failed} of {checks} hand gradients match the engine's "
          f"(max |difference| <= {TOLERANCE:.0e})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
