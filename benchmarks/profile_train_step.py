"""Where does a training step of the tiny GPT spend its time? Per-operation totals.

    python benchmarks/profile_train_step.py                    # compact vocabulary, batch 2
    python benchmarks/profile_train_step.py --vocab-size 100256 --steps 5

Every ``Function`` subclass's ``forward`` and ``backward`` is wrapped in a timer that records
*exclusive* time (a backward that calls other ops -- MatMul's backward runs two matmuls -- is
charged only for what it does itself). The three phases of a step -- forward (with the loss),
backward, optimizer -- are timed as a whole too; the part of a phase not inside any op is the
engine's Python overhead (graph bookkeeping, the walk, gradient accumulation).
Thread count: ``TGL_NUM_THREADS`` as usual. Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np

import tinygrad_lite as tg
from tinygrad_lite.autograd import Function
from tinygrad_lite.models.gpt import GPT, GPTConfig
from tinygrad_lite.optim import AdamW

exclusive = defaultdict(float)   # (phase, op, "forward"/"backward"/"backward_arrays") -> seconds
calls = defaultdict(int)
_children = []                   # stack: time spent in nested timed calls
_phase = ["forward"]             # the phase of the step being run


def _timed(key, fn):
    def wrapper(*args, **kwargs):
        _children.append(0.0)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            exclusive[(_phase[0],) + key] += elapsed - _children.pop()
            calls[(_phase[0],) + key] += 1
            if _children:
                _children[-1] += elapsed
    return wrapper


def instrument() -> None:
    todo = list(Function.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        for method in ("forward", "backward", "backward_arrays"):
            if method in cls.__dict__:
                setattr(cls, method, _timed((cls.__name__, method), cls.__dict__[method]))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vocab-size", type=int, default=12_111)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args(argv)

    tg.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=args.vocab_size))
    optimizer = AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    batches = [tuple(rng.integers(0, args.vocab_size, (args.batch_size, 128)) for _ in "xy")
               for _ in range(args.steps + 2)]
    phases = defaultdict(float)
    instrument()
    for i, (x, y) in enumerate(batches):
        if i == 2:  # two warm-up steps, then start counting
            exclusive.clear(), calls.clear(), phases.clear()
        marks = [time.perf_counter()]
        _phase[0] = "forward"
        _, loss = model(x, y)
        marks.append(time.perf_counter())
        optimizer.zero_grad()
        _phase[0] = "backward"  # ops that a backward formula runs count here
        loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        for name, a, b in zip(("forward", "backward", "optimizer"), marks, marks[1:]):
            phases[name] += b - a

    n = args.steps
    total = sum(phases.values())
    print(f"vocab {args.vocab_size:,}, batch {args.batch_size}, {n} steps: "
          f"{1000 * total / n:.1f} ms/step")
    for name in ("forward", "backward"):
        in_ops = sum(t for (phase, _, _), t in exclusive.items() if phase == name)
        print(f"  {name:9s} {1000 * phases[name] / n:7.1f} ms  (ops {1000 * in_ops / n:.1f}, "
              f"engine overhead {1000 * (phases[name] - in_ops) / n:.1f})")
    print(f"  optimizer {1000 * phases['optimizer'] / n:7.1f} ms  (AdamW.step)")
    print(f"\n{'phase':9s} {'op':14s} {'method':9s} {'calls/step':>10s} {'ms/step':>8s} "
          f"{'share':>6s}")
    for key, seconds in sorted(exclusive.items(), key=lambda kv: -kv[1])[:20]:
        phase, op, method = key
        print(f"{phase:9s} {op:14s} {method:9s} {calls[key] / n:10.0f} {1000 * seconds / n:8.2f} "
              f"{100 * seconds / total:5.1f}%")


if __name__ == "__main__":
    main()
