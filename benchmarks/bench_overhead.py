"""Per-op overhead of the autograd engine on tiny tensors.

A chain of N elementwise ops on a 4-element float32 vector, then backward: on arrays this small
the arithmetic is negligible and what is measured is the engine's own cost per op (building a
node, the graph walk, creating gradient tensors). Contenders, interleaved in one run:

* tinygrad_lite forward + backward (with the garbage collector on, as users run it, and off,
  to show what the GC costs);
* tinygrad_lite forward only, without a graph (inside ``no_grad``);
* plain NumPy, forward only (the floor: the ufunc calls themselves);
* PyTorch eager forward + backward, when ``torch`` is importable (optional, never required).

Prints microseconds per op (median over repeats) and ratios, and writes JSON.

    python benchmarks/bench_overhead.py [--ops 1000] [--repeats 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time

import numpy as np

import tinygrad_lite as tg  # the installed package (pip install . / pip install -e .)

try:
    import torch
except ImportError:  # optional contender
    torch = None

# The chain: a repeating cycle of four elementwise ops, with a tensor (not a Python number)
# as the second operand of the binary ones, so broadcasting-free tensor-tensor ops are measured.
X0 = np.linspace(0.1, 0.4, 4, dtype=np.float32)
W0 = np.full(4, 0.999, dtype=np.float32)
B0 = np.full(4, 0.001, dtype=np.float32)


def chain_tinygrad(n_ops: int, backward: bool = True) -> None:
    x = tg.Tensor(X0.copy(), requires_grad=True)
    w, b = tg.Tensor(W0), tg.Tensor(B0)
    h = x
    for i in range(n_ops):
        k = i % 4
        h = h * w if k == 0 else h + b if k == 1 else h.tanh() if k == 2 else h * 1.5
    if backward:
        h.sum().backward()


def chain_tinygrad_no_grad(n_ops: int) -> None:
    with tg.no_grad():
        chain_tinygrad(n_ops, backward=False)


def chain_numpy(n_ops: int) -> None:
    h, w, b = X0.copy(), W0, B0
    for i in range(n_ops):
        k = i % 4
        h = h * w if k == 0 else h + b if k == 1 else np.tanh(h) if k == 2 else h * 1.5


def chain_torch(n_ops: int) -> None:
    x = torch.tensor(X0, requires_grad=True)
    w, b = torch.tensor(W0), torch.tensor(B0)
    h = x
    for i in range(n_ops):
        k = i % 4
        h = h * w if k == 0 else h + b if k == 1 else h.tanh() if k == 2 else h * 1.5
    h.sum().backward()


def time_once(fn, n_ops: int, gc_enabled: bool) -> float:
    was_enabled = gc.isenabled()
    if not gc_enabled:
        gc.disable()
    try:
        start = time.perf_counter()
        fn(n_ops)
        return time.perf_counter() - start
    finally:
        if was_enabled:
            gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000, help="length of the op chain")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per contender")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                      "bench_overhead.json"))
    args = parser.parse_args()

    contenders = {
        "tinygrad_lite fwd+bwd": (chain_tinygrad, True),
        "tinygrad_lite fwd+bwd (gc off)": (chain_tinygrad, False),
        "tinygrad_lite fwd, no_grad": (chain_tinygrad_no_grad, True),
        "numpy fwd": (chain_numpy, True),
    }
    if torch is not None:
        torch.set_num_threads(1)  # tiny tensors: threads only add overhead
        contenders["torch fwd+bwd"] = (chain_torch, True)

    for fn, _ in contenders.values():  # warm-up (imports, caches)
        fn(args.ops)
    times = {name: [] for name in contenders}
    for _ in range(args.repeats):  # interleaved: machine noise hits every contender alike
        for name, (fn, gc_on) in contenders.items():
            times[name].append(time_once(fn, args.ops, gc_on))

    us_per_op = {name: statistics.median(t) / args.ops * 1e6 for name, t in times.items()}
    base = us_per_op["tinygrad_lite fwd+bwd"]
    print(f"chain of {args.ops} elementwise ops on a 4-element float32 tensor, "
          f"median of {args.repeats} runs (kernels backend: {tg.kernels.get_backend()})")
    print(f"{'contender':34s} {'us/op':>8s} {'tinygrad_lite / this':>22s}")
    for name, us in us_per_op.items():
        print(f"{name:34s} {us:8.2f} {base / us:22.2f}")

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    result = {
        "benchmark": "bench_overhead", "ops": args.ops, "repeats": args.repeats,
        "python": platform.python_version(), "numpy": np.__version__,
        "torch": None if torch is None else torch.__version__,
        "us_per_op_median": us_per_op,
        "ratio_tinygrad_over": {name: base / us for name, us in us_per_op.items()},
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
