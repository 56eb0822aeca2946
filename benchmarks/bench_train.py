"""Milliseconds per training step of the tiny GPT -- forward, backward and AdamW -- against the
same architecture in PyTorch (when it is importable), at 1 and 2 threads, with peak memory.

    python benchmarks/bench_train.py                 # all cases, 3 interleaved rounds
    python benchmarks/bench_train.py --quick         # fewer steps and rounds
    python benchmarks/bench_train.py --cases compact --threads 2 --no-torch

Cases (reference hyperparameters: d_model 80, 6 blocks, 4 heads, context 128, dropout 0.1):
``full`` (the whole cl100k vocabulary, batch 2), ``compact`` (tiny Shakespeare's 12,111 tokens,
batch 2) and ``compact-b16`` (batch 16). Every measurement runs in its own subprocess with the
thread count set in the environment before anything is imported (``TGL_NUM_THREADS``,
``OMP_NUM_THREADS``, ``torch.set_num_threads``), so each process's peak resident memory
(``ru_maxrss``) is that contender's alone. Contenders alternate within each round and rounds
repeat, so a change in machine load hits both; the reported time is the median over all timed
steps of all rounds. Results are printed as a table (with the ratio tinygrad_lite / PyTorch: below 1
means faster) and written to ``benchmarks/results/bench_train.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CASES = {  # name: (vocab_size, batch_size)
    "full": (100_253, 2),  # max(cl100k id in tiny Shakespeare) + 1, as the reference
    "compact": (12_111, 2),
    "compact-b16": (12_111, 16),
}
MODEL = dict(context_length=128, d_model=80, num_blocks=6, num_heads=4, dropout=0.1)
PYTORCH_REFERENCE_2_THREADS = {  # measured for the issue: PyTorch 2.13 CPU eager, 2 threads
    "full": {"ms": 337, "peak_mb": 989}, "compact": {"ms": 58, "peak_mb": 450},
    "compact-b16": {"ms": 380, "peak_mb": 892}}


# -- the worker: one contender, one case, one thread count, in a fresh process -------------------

def _batches(vocab_size: int, batch_size: int, steps: int):
    import numpy as np
    rng = np.random.default_rng(0)
    t = MODEL["context_length"]
    return [(rng.integers(0, vocab_size, (batch_size, t)), rng.integers(0, vocab_size,
                                                                          (batch_size, t)))
            for _ in range(steps)]


def _timed_steps(loss_fn, optimizer, batches, warmup: int) -> list:
    """Seconds per training step (forward -> loss -> backward -> update), after ``warmup`` steps.
    Both contenders run exactly this loop."""
    times = []
    for i, (x, y) in enumerate(batches):
        start = time.perf_counter()
        loss = loss_fn(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def _steps_tinygrad_lite(vocab_size, batch_size, warmup, steps):
    import tinygrad_lite as tg
    from tinygrad_lite.models.gpt import GPT, GPTConfig
    from tinygrad_lite.optim import AdamW

    tg.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab_size, **MODEL))
    optimizer = AdamW(model.parameters(), lr=1e-3)
    return (_timed_steps(lambda x, y: model(x, y)[1], optimizer,
                         _batches(vocab_size, batch_size, warmup + steps), warmup),
            model.num_parameters())


def _torch_gpt(vocab_size: int):
    """The same architecture in PyTorch: the layers of tinygrad_lite.models.GPT, written out."""
    import math

    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, d, heads, p):
            super().__init__()
            self.heads = heads
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.in_proj, self.out_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), nn.Dropout(p),
                                     nn.Linear(4 * d, d))
            self.attn_dropout, self.drop1, self.drop2 = nn.Dropout(p), nn.Dropout(p), \
                nn.Dropout(p)

        def attention(self, x):
            b, t, d = x.shape
            q, k, v = self.in_proj(x).chunk(3, dim=-1)
            q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)
                       for z in (q, k, v))
            scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
            mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
            weights = self.attn_dropout(scores.masked_fill(mask, float("-inf")).softmax(-1))
            return self.out_proj((weights @ v).transpose(1, 2).reshape(b, t, d))

        def forward(self, x):
            x = x + self.drop1(self.attention(self.ln1(x)))
            return x + self.drop2(self.ffn(self.ln2(x)))

    class TorchGPT(nn.Module):
        def __init__(self):
            super().__init__()
            d, t = MODEL["d_model"], MODEL["context_length"]
            self.token_embedding = nn.Embedding(vocab_size, d)
            position = torch.arange(t, dtype=torch.float32)[:, None]
            frequency = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
            pe = torch.zeros(t, d)
            pe[:, 0::2], pe[:, 1::2] = torch.sin(position * frequency), \
                torch.cos(position * frequency)
            self.register_buffer("pe", pe)
            self.drop = nn.Dropout(MODEL["dropout"])
            self.blocks = nn.ModuleList(Block(d, MODEL["num_heads"], MODEL["dropout"])
                                        for _ in range(MODEL["num_blocks"]))
            self.ln_f, self.lm_head = nn.LayerNorm(d), nn.Linear(d, vocab_size)

        def forward(self, idx, targets):
            x = self.drop(self.token_embedding(idx) + self.pe[: idx.shape[1]])
            for block in self.blocks:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))
            return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                               targets.reshape(-1))

    return TorchGPT()


def _steps_pytorch(vocab_size, batch_size, warmup, steps):
    import torch

    torch.manual_seed(0)
    model = _torch_gpt(vocab_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = [(torch.from_numpy(x), torch.from_numpy(y))
               for x, y in _batches(vocab_size, batch_size, warmup + steps)]
    return (_timed_steps(model, optimizer, batches, warmup),
            sum(p.numel() for p in model.parameters()))


def worker(spec: dict) -> None:
    import resource

    if spec["contender"] == "pytorch":
        import torch
        torch.set_num_threads(spec["threads"])
        run = _steps_pytorch
    else:
        run = _steps_tinygrad_lite
    vocab_size, batch_size = CASES[spec["case"]]
    times, params = run(vocab_size, batch_size, spec["warmup"], spec["steps"])
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(json.dumps({"times": times, "parameters": params, "peak_mb": peak_kb / 1024}))


# -- the driver ------------------------------------------------------------------------------------

def _package_parent() -> str:
    """Where the installed tinygrad_lite lives (found without importing it: the workers must
    import it only after their thread settings are in the environment); the checkout if it is
    not installed."""
    spec = importlib.util.find_spec("tinygrad_lite")
    if spec is None or not spec.submodule_search_locations:
        return str(REPO)
    return str(Path(list(spec.submodule_search_locations)[0]).parent)


def measure(contender: str, case: str, threads: int, steps: int, warmup: int) -> dict:
    env = {**os.environ, "TGL_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join(filter(None, [_package_parent(),
                                                       os.environ.get("PYTHONPATH")]))}
    spec = dict(contender=contender, case=case, threads=threads, steps=steps, warmup=warmup)
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{contender} {case} at {threads} thread(s) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def torch_available() -> bool:
    done = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True)
    return done.returncode == 0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--rounds", type=int, default=3, help="interleaved repetitions")
    p.add_argument("--steps", type=int, default=8, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="1 round of 4 steps")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument("--out", type=Path, default=HERE / "results" / "bench_train.json")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return
    if args.quick:
        args.rounds, args.steps, args.warmup = 1, 4, 1
    contenders = ["tinygrad_lite"] + ([] if args.no_torch or not torch_available()
                                      else ["pytorch"])
    runs = {}  # (contender, case, threads) -> list of results
    for round_ in range(args.rounds):
        for case in args.cases:
            for threads in args.threads:
                # Alternate which contender goes first, so neither always runs on a warm machine.
                order = contenders if round_ % 2 == 0 else contenders[::-1]
                for contender in order:
                    result = measure(contender, case, threads, args.steps, args.warmup)
                    runs.setdefault((contender, case, threads), []).append(result)
                    print(f"round {round_ + 1}/{args.rounds}  {case:12s} {threads} thread(s)  "
                          f"{contender:13s} {1000 * statistics.median(result['times']):8.1f} "
                          f"ms/step", file=sys.stderr)

    rows = []
    for case in args.cases:
        vocab_size, batch_size = CASES[case]
        for threads in args.threads:
            row = {"case": case, "vocab_size": vocab_size, "batch_size": batch_size,
                   "threads": threads}
            for contender in contenders:
                results = runs[(contender, case, threads)]
                ms = 1000 * statistics.median(t for r in results for t in r["times"])
                row[contender] = {
                    "ms_per_step": ms,
                    "tokens_per_second": batch_size * MODEL["context_length"] / (ms / 1000),
                    "peak_mb": max(r["peak_mb"] for r in results),
                    "parameters": results[0]["parameters"]}
            if "pytorch" in row:
                row["time_ratio"] = row["tinygrad_lite"]["ms_per_step"] / row["pytorch"][
                    "ms_per_step"]
                row["memory_ratio"] = row["tinygrad_lite"]["peak_mb"] / row["pytorch"]["peak_mb"]
            rows.append(row)

    header = (f"{'case':12s} {'V':>7s} {'B':>3s} {'thr':>3s} {'params':>11s} "
              f"{'ours ms':>9s} {'tok/s':>7s} {'peak MB':>8s}")
    if "pytorch" in contenders:
        header += f" {'torch ms':>9s} {'peak MB':>8s} {'time x':>7s} {'mem x':>6s}"
    print(header)
    for row in rows:
        ours = row["tinygrad_lite"]
        line = (f"{row['case']:12s} {row['vocab_size']:7d} {row['batch_size']:3d} "
                f"{row['threads']:3d} {ours['parameters']:11,d} {ours['ms_per_step']:9.1f} "
                f"{ours['tokens_per_second']:7.0f} {ours['peak_mb']:8.0f}")
        if "pytorch" in row:
            torch_row = row["pytorch"]
            line += (f" {torch_row['ms_per_step']:9.1f} {torch_row['peak_mb']:8.0f} "
                     f"{row['time_ratio']:7.2f} {row['memory_ratio']:6.2f}")
        print(line)
    print("time x, mem x: tinygrad_lite / PyTorch (below 1: tinygrad_lite is faster / smaller). "
          "Goals: full <= 0.7, compact <= 1.0, memory <= 1.0.")

    report = {"benchmark": "bench_train", "model": MODEL, "rounds": args.rounds,
              "steps_per_process": args.steps, "warmup": args.warmup,
              "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                          "load_average_after": os.getloadavg()},
              "pytorch_reference_2_threads": PYTORCH_REFERENCE_2_THREADS, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, args.out)  # atomic: a reader never sees half a file
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
