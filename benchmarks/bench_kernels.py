"""Benchmark of the C kernels against NumPy/OpenBLAS, the naive C loop and (optionally) PyTorch.

What is measured, at 1 and 2 threads:

* GEMM by precision (bench_kernels_lowp.py): kernels.matmul_lowp on bfloat16 and float16 vs
  our float32 GEMM, OpenBLAS float32 and PyTorch's bfloat16 matmul, squares 64-1024 and the
  tiny GPT's linear shapes.
* GEMM, float32 and float64: GFLOPS for square sizes 64-2048 and the tiny-GPT shapes
  (256x80 @ 80x100277, 256x80 @ 80x10000, 256x80 @ 80x320, batched (8,128,20) @ (8,20,128)).
  Contenders: ``kernels.matmul`` (the C GEMM, through the bridge the engine uses), ``np.matmul``
  (OpenBLAS) and ``kernels.naive_gemm`` (the triple loop; only where it finishes quickly).
  Printed with the ratio C/OpenBLAS per shape and its geometric mean.
* Softmax family, float32: softmax forward, softmax backward, log-softmax forward and the fused
  cross-entropy forward + backward, for (256, 100277), (8, 4, 128, 128) and (2048, 2048)
  (cross-entropy sees the last one as rows x vocabulary). Time and GB/s (bytes that must cross
  memory: inputs read once + outputs written once), against the NumPy reference and PyTorch
  (``torch.softmax``, ``F.cross_entropy`` + ``backward()``) when ``import torch`` works.

How it is measured, so the numbers can be trusted:

* contenders of one case run interleaved (each repeat runs every contender once, in rotating
  order), and the reported time is the median over repeats; a ratio between two contenders is
  the median over repeats of their ratio within one repeat (paired samples taken a fraction of
  a second apart, so a burst of load from elsewhere hits both);
* the CPU time the hypervisor gave to other machines ("steal", from /proc/stat) is recorded per
  case and printed: on a shared virtual machine it is the main source of noise;
* a pause between contenders: OpenBLAS worker threads keep spinning for ~0.1 s after a call and
  would steal the second core from whatever runs next;
* thread counts are fixed per run: every thread count runs in its own subprocess with
  OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS / TGL_NUM_THREADS set before NumPy is
  imported (and threadpoolctl's limits too when it is installed; torch.set_num_threads);
* tiny cases repeat the call in an inner loop so one sample is long enough to time.

Writes everything as JSON (``--out``, default benchmarks/results/bench_kernels.json) and a PNG
plot next to it when matplotlib is installed.

    python benchmarks/bench_kernels.py            # full run (a few minutes)
    python benchmarks/bench_kernels.py --quick    # smoke run (well under a minute)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from bench_kernels_lowp import print_lowp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results", "bench_kernels.json")

SQUARES = [64, 128, 256, 512, 1024, 2048]
GPT_SHAPES = [  # (batch, m, k, n); batch None = plain 2-D product
    (None, 256, 80, 100277),
    (None, 256, 80, 10000),
    (None, 256, 80, 320),
    (8, 128, 20, 128),
]
SOFTMAX_SHAPES = [(256, 100277), (8, 4, 128, 128), (2048, 2048)]

QUICK_SQUARES = [64, 256]
QUICK_GPT = [(None, 256, 80, 320), (8, 128, 20, 128)]
QUICK_SOFTMAX = [(8, 4, 128, 128), (256, 10000)]

# The targets, checked in the summary.
TARGETS = {
    "gemm_float32": {"geomean": 1.0, "min": 0.9},
    "gemm_float64": {"geomean": 1.0, "min": 0.85},
    "softmax_vs_numpy": 3.0,
    "softmax_vs_torch": 1.3,
    "cross_entropy_256x100277_vs_torch": 5.0,
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a fast smoke run on a few small cases")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per contender "
                   "(default 9, quick 3)")
    p.add_argument("--pause", type=float, default=None, help="seconds of pause between "
                   "contenders (default 0.15)")
    p.add_argument("--skip-gemm", action="store_true")
    p.add_argument("--skip-softmax", action="store_true")
    p.add_argument("--skip-lowp", action="store_true", help="skip the bfloat16/float16 GEMM")
    p.add_argument("--out", default=DEFAULT_OUT, help="JSON output file")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--child-threads", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.repeats is None:
        args.repeats = 3 if args.quick else 9
    if args.pause is None:
        args.pause = 0.15  # OpenBLAS's threads spin ~0.1 s: a shorter pause stalls 2-thread runs
    return args


# ============================================================================================
# Child: one thread count, all measurements
# ============================================================================================

def cpu_times():
    """(steal, total) jiffies of all CPUs from /proc/stat, or None where there is no such file."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (values[7] if len(values) > 7 else 0), sum(values[:8])


def steal_fraction(before, after) -> float | None:
    """Share of the CPU time between two cpu_times() readings that went to other machines."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def paired_ratio(res: dict, slower: str, faster: str) -> float:
    """Median over repeats of time(slower) / time(faster), each pair from the same repeat."""
    return statistics.median(a / b for a, b in zip(res[slower]["samples_s"],
                                                   res[faster]["samples_s"]))


def measure(contenders: dict, repeats: int, pause: float, min_sample: float) -> dict:
    """Median seconds per call of each contender, interleaved over repeats."""
    inner = {}
    for name, fn in contenders.items():  # warm up, and size an inner loop for tiny cases
        time.sleep(pause)  # (as before every sample: OpenBLAS's threads may still be spinning)
        fn()
        one = float("inf")
        for _ in range(3):  # the fastest of 3: one slow call (a thread waking up, a moment of
            t0 = time.perf_counter()  # load) must not shrink the loop to a few calls, each
            fn()                      # then paying that wake-up again
            one = min(one, time.perf_counter() - t0)
        inner[name] = max(1, min(10000, math.ceil(min_sample / max(one, 1e-9))))
    names = list(contenders)
    samples = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate who goes first
        for name in order:
            time.sleep(pause)  # let OpenBLAS's spinning workers go to sleep
            fn, n = contenders[name], inner[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return {name: {"median_s": statistics.median(s), "samples_s": s, "inner_loop": inner[name]}
            for name, s in samples.items()}


def run_child(args) -> None:
    nt = args.child_threads
    import numpy as np  # imported only now: the thread env vars are already set

    limits = None
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(limits=nt)
    except ImportError:
        pass
    from tinygrad_lite import kernels as K  # the installed package (pip install . / -e .)

    K.set_backend("c")
    K.set_num_threads(nt)
    try:
        import torch
        import torch.nn.functional as F
        torch.set_num_threads(nt)
    except ImportError:
        torch = F = None

    def log(msg):
        print(f"  [{nt} thread{'s' if nt > 1 else ''}] {msg}", file=sys.stderr, flush=True)

    rng = np.random.default_rng(0)
    min_sample = 0.005 if args.quick else 0.02
    out = {"threads": nt, "gemm": [], "softmax": [], "loadavg_at_start": os.getloadavg(),
           "gemm_path": K.gemm_path(), "torch": torch.__version__ if torch else None,
           "threadpoolctl": limits is not None}
    squares = QUICK_SQUARES if args.quick else SQUARES
    gpt = QUICK_GPT if args.quick else GPT_SHAPES
    naive_limit = 5e7 if args.quick else 4e8  # flops the naive loop is given

    if not args.skip_gemm:
        cases = [(None, s, s, s, f"{s}x{s}x{s}") for s in squares]
        cases += [(b, m, k, n, (f"{b}x" if b else "") + f"{m}x{k}.{k}x{n}") for b, m, k, n in gpt]
        for dtype in (np.float32, np.float64):
            for batch, m, k, n, label in cases:
                lead = (batch,) if batch else ()
                a = rng.standard_normal(lead + (m, k)).astype(dtype)
                b = rng.standard_normal(lead + (k, n)).astype(dtype)
                flops = 2.0 * m * n * k * (batch or 1)
                contenders = {"c": lambda a=a, b=b: K.matmul(a, b),
                              "openblas": lambda a=a, b=b: np.matmul(a, b)}
                if flops <= naive_limit:
                    if batch:
                        contenders["naive"] = lambda a=a, b=b: [K.naive_gemm(a[i], b[i])
                                                                for i in range(batch)]
                    else:
                        contenders["naive"] = lambda a=a, b=b: K.naive_gemm(a, b)
                ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
                err = float(np.max(np.abs(K.matmul(a, b) - ref)) / max(np.max(np.abs(ref)), 1e-30))
                err_blas = float(np.max(np.abs(np.matmul(a, b) - ref)) /
                                 max(np.max(np.abs(ref)), 1e-30))
                before = cpu_times()
                res = measure(contenders, args.repeats, args.pause, min_sample)
                steal = steal_fraction(before, cpu_times())
                for r in res.values():
                    r["gflops"] = flops / r["median_s"] / 1e9
                ratio = paired_ratio(res, "openblas", "c")  # > 1: C is faster
                out["gemm"].append({"shape": label, "dtype": np.dtype(dtype).name,
                                    "flops": flops, "results": res, "ratio_c_openblas": ratio,
                                    "steal_fraction": steal,
                                    "max_rel_err_c": err, "max_rel_err_openblas": err_blas})
                log(f"gemm {np.dtype(dtype).name:7s} {label:22s} C {res['c']['gflops']:7.1f}"
                    f"  OpenBLAS {res['openblas']['gflops']:7.1f} GFLOPS  ratio {ratio:.2f}"
                    f"  steal {100 * (steal or 0):.0f}%")

    if not args.skip_lowp:
        from bench_kernels_lowp import run_lowp
        out["lowp_path"] = {0: "portable", 1: "avx2", 2: "avx512"}.get(
            K.runtime._lib.tgl_gemm_lowp_path())
        out["lowp"] = run_lowp(K, np, torch, measure, paired_ratio, args, min_sample, log)

    if not args.skip_softmax:
        shapes = QUICK_SOFTMAX if args.quick else SOFTMAX_SHAPES
        dtype = np.float32
        for shape in shapes:
            x = (rng.standard_normal(shape) * 3).astype(dtype)
            dy = rng.standard_normal(shape).astype(dtype)
            y = K.softmax(x)
            x2 = x.reshape(-1, shape[-1])
            targets = rng.integers(0, shape[-1], x2.shape[0])
            nbytes = x.nbytes
            ops = {
                "softmax_fwd": (2 * nbytes, {
                    "c": lambda: K.softmax(x), "numpy": lambda: K.reference_softmax(x)}),
                "softmax_bwd": (3 * nbytes, {
                    "c": lambda: K.softmax_backward(y, dy),
                    "numpy": lambda: K.reference_softmax_backward(y, dy)}),
                "log_softmax_fwd": (2 * nbytes, {
                    "c": lambda: K.log_softmax(x), "numpy": lambda: K.reference_log_softmax(x)}),
                "cross_entropy_fwd_bwd": (2 * nbytes + targets.nbytes, {
                    "c": lambda: K.cross_entropy(x2, targets),
                    "numpy": lambda: K.reference_cross_entropy(x2, targets)}),
            }
            if torch is not None:
                tx, tdy, ty = torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(y)
                tx2, tt = torch.from_numpy(x2), torch.from_numpy(targets)

                def torch_ce():
                    leaf = tx2.detach().requires_grad_()
                    F.cross_entropy(leaf, tt).backward()
                    return leaf.grad

                ops["softmax_fwd"][1]["torch"] = lambda: torch.softmax(tx, -1)
                ops["softmax_bwd"][1]["torch"] = (
                    lambda: torch._softmax_backward_data(tdy, ty, -1, ty.dtype))
                ops["log_softmax_fwd"][1]["torch"] = lambda: torch.log_softmax(tx, -1)
                ops["cross_entropy_fwd_bwd"][1]["torch"] = torch_ce
            for op, (moved, contenders) in ops.items():
                before = cpu_times()
                res = measure(contenders, args.repeats, args.pause, min_sample)
                steal = steal_fraction(before, cpu_times())
                for r in res.values():
                    r["gbps"] = moved / r["median_s"] / 1e9
                c = res["c"]["median_s"]
                ratios = {f"c_vs_{k}": paired_ratio(res, k, "c") for k in res if k != "c"}
                out["softmax"].append({"op": op, "shape": list(shape), "dtype": "float32",
                                       "bytes": moved, "results": res, "speedup": ratios,
                                       "steal_fraction": steal})
                log(f"{op:22s} {str(shape):18s} C {c * 1e3:8.2f} ms "
                    f"{res['c']['gbps']:6.1f} GB/s  " +
                    "  ".join(f"{k} x{v:.2f}" for k, v in ratios.items()) +
                    f"  steal {100 * (steal or 0):.0f}%")

    out["loadavg_at_end"] = os.getloadavg()
    with open(args.child_out, "w") as f:
        json.dump(out, f)


# ============================================================================================
# Parent: one subprocess per thread count, then tables, JSON and plot
# ============================================================================================

def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def summarise(runs: list) -> dict:
    summary = {}
    for run in runs:
        nt = run["threads"]
        for dt in ("float32", "float64"):
            rows = [g for g in run["gemm"] if g["dtype"] == dt]
            if rows:
                ratios = [g["ratio_c_openblas"] for g in rows]
                worst = min(rows, key=lambda g: g["ratio_c_openblas"])
                t = TARGETS[f"gemm_{dt}"]
                summary[f"gemm_{dt}_{nt}t"] = {
                    "geomean_c_openblas": geomean(ratios), "min_c_openblas": min(ratios),
                    "min_shape": worst["shape"],
                    "meets_target": geomean(ratios) >= t["geomean"] and min(ratios) >= t["min"]}
        for op in ("softmax_fwd", "softmax_bwd", "log_softmax_fwd"):
            sm = [s for s in run["softmax"] if s["op"] == op]
            if not sm:
                continue
            vs_np = [s["speedup"]["c_vs_numpy"] for s in sm]
            worst = min(sm, key=lambda s: s["speedup"]["c_vs_numpy"])
            entry = {"min_vs_numpy": min(vs_np), "min_vs_numpy_shape": str(tuple(worst["shape"])),
                     "meets_numpy_target": min(vs_np) >= TARGETS["softmax_vs_numpy"]}
            if all("c_vs_torch" in s["speedup"] for s in sm):
                vs_t = [s["speedup"]["c_vs_torch"] for s in sm]
                worst = min(sm, key=lambda s: s["speedup"]["c_vs_torch"])
                entry.update(min_vs_torch=min(vs_t),
                             min_vs_torch_shape=str(tuple(worst["shape"])),
                             meets_torch_target=min(vs_t) >= TARGETS["softmax_vs_torch"])
            summary[f"{op}_{nt}t"] = entry
        ce = [s for s in run["softmax"] if s["op"] == "cross_entropy_fwd_bwd"
              and s["shape"] == [256, 100277] and "c_vs_torch" in s["speedup"]]
        if ce:
            v = ce[0]["speedup"]["c_vs_torch"]
            summary[f"cross_entropy_256x100277_{nt}t"] = {
                "c_vs_torch": v, "meets_target": v >= TARGETS["cross_entropy_256x100277_vs_torch"]}
    return summary


def print_tables(runs: list, summary: dict) -> None:
    for run in runs:
        nt = run["threads"]
        steals = [c["steal_fraction"] for c in run["gemm"] + run["softmax"]
                  if c.get("steal_fraction") is not None]
        if steals and max(steals) > 0.05:
            print(f"\nnote: during the {nt}-thread run the hypervisor gave {100 * min(steals):.0f}"
                  f"-{100 * max(steals):.0f}% of the CPU time to other machines (steal; median "
                  f"{100 * statistics.median(steals):.0f}%): absolute numbers are depressed and "
                  f"noisy, ratios of interleaved contenders less so.")
        load = run.get("loadavg_at_start", [0])[0]
        if load > 0.5:
            print(f"\nnote: the 1-minute load average was {load:.1f} when the {nt}-thread run "
                  f"started: other processes were using the CPUs, so the numbers are noisy "
                  f"(2-thread kernels suffer most).")
        if run["gemm"]:
            print(f"\nGEMM, {nt} thread(s), micro-kernel {run['gemm_path']}: GFLOPS (median)")
            print(f"{'dtype':8s} {'shape':24s} {'C':>8s} {'OpenBLAS':>9s} {'naive':>8s} "
                  f"{'C/OpenBLAS':>11s} {'rel.err C':>10s}")
            for g in run["gemm"]:
                r = g["results"]
                naive = f"{r['naive']['gflops']:8.2f}" if "naive" in r else f"{'-':>8s}"
                print(f"{g['dtype']:8s} {g['shape']:24s} {r['c']['gflops']:8.1f} "
                      f"{r['openblas']['gflops']:9.1f} {naive} {g['ratio_c_openblas']:11.2f} "
                      f"{g['max_rel_err_c']:10.1e}")
            for dt in ("float32", "float64"):
                s = summary.get(f"gemm_{dt}_{nt}t")
                if s:
                    print(f"  {dt}: geometric mean C/OpenBLAS {s['geomean_c_openblas']:.2f}, "
                          f"lowest {s['min_c_openblas']:.2f} ({s['min_shape']})"
                          f"  target {'met' if s['meets_target'] else 'NOT met'}")
        print_lowp(run)
        if run["softmax"]:
            print(f"\nSoftmax family, float32, {nt} thread(s): median time and GB/s")
            names = sorted({k for s in run["softmax"] for k in s["results"]},
                           key=["c", "numpy", "torch"].index)
            head = "".join(f" {n + ' ms':>10s} {n + ' GB/s':>10s}" for n in names)
            print(f"{'op':22s} {'shape':18s}{head}  speedup of C")
            for s in run["softmax"]:
                cells = "".join(f" {s['results'][n]['median_s'] * 1e3:10.2f} "
                                f"{s['results'][n]['gbps']:10.1f}" if n in s["results"]
                                else f" {'-':>10s} {'-':>10s}" for n in names)
                sp = "  ".join(f"{k[5:]} x{v:.2f}" for k, v in s["speedup"].items())
                print(f"{s['op']:22s} {str(tuple(s['shape'])):18s}{cells}  {sp}")
    print("\nTargets (issue 3):")
    for k, v in summary.items():
        print(f"  {k}: " + ", ".join(f"{a}={b:.2f}" if isinstance(b, float) else f"{a}={b}"
                                     for a, b in v.items()))


def _grouped_bars(ax, rows, contenders, metric, label, ylabel, title) -> None:
    """One group of bars per benchmark row, one bar per contender (0 where it did not run)."""
    if not rows:
        return
    xs, width = range(len(rows)), 0.28
    for i, name in enumerate(contenders):
        values = [r["results"][name][metric] if name in r["results"] else 0 for r in rows]
        ax.bar([x + (i - 1) * width for x in xs], values, width, label=name)
    ax.set_xticks(list(xs))
    ax.set_xticklabels([label(r) for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()


def plot(runs: list, path: str) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(len(runs), 2, figsize=(16, 5 * len(runs)), squeeze=False)
    for row, run in enumerate(runs):
        _grouped_bars(axes[row][0], run["gemm"], ["c", "openblas", "naive"], "gflops",
                      lambda g: f"{g['dtype'][5:]}:{g['shape']}", "GFLOPS",
                      f"GEMM, {run['threads']} thread(s)")
        _grouped_bars(axes[row][1], run["softmax"], ["c", "numpy", "torch"], "gbps",
                      lambda r: f"{r['op']}\n{tuple(r['shape'])}",
                      "GB/s (input read + output written)",
                      f"Softmax family, float32, {run['threads']} thread(s)")
    fig.tight_layout()
    png = os.path.splitext(path)[0] + ".png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def main() -> None:
    args = parse_args()
    if args.child_threads is not None:
        run_child(args)
        return
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    runs = []
    for nt in threads:
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "TGL_NUM_THREADS"):
            env[var] = str(nt)
        env["TGL_BACKEND"] = "c"
        env.pop("TGL_GEMM_PORTABLE", None)
        with tempfile.TemporaryDirectory() as tmp:
            child_out = os.path.join(tmp, "run.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--child-threads", str(nt),
                   "--child-out", child_out, "--repeats", str(args.repeats),
                   "--pause", str(args.pause)]
            cmd += ["--quick"] if args.quick else []
            cmd += ["--skip-gemm"] if args.skip_gemm else []
            cmd += ["--skip-softmax"] if args.skip_softmax else []
            cmd += ["--skip-lowp"] if args.skip_lowp else []
            print(f"running {nt}-thread measurements ...", file=sys.stderr, flush=True)
            subprocess.run(cmd, env=env, check=True)
            with open(child_out) as f:
                runs.append(json.load(f))
    summary = summarise(runs)
    print_tables(runs, summary)

    import numpy as np
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip() or None
    except OSError:
        commit = None
    result = {
        "meta": {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "cpu": cpu_name(), "cpus_available": len(os.sched_getaffinity(0))
                 if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                 "python": platform.python_version(), "numpy": np.__version__,
                 "git_commit": commit, "quick": args.quick, "repeats": args.repeats,
                 "pause_s": args.pause,
                 "timing": "median of interleaved repeats; ratios: median of per-repeat ratios"},
        "targets": TARGETS, "summary": summary, "runs": runs,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"\nwrote {args.out}")
    if not args.no_plot:
        png = plot(runs, args.out)
        print(f"wrote {png}" if png else "(matplotlib not installed: no plot)")


if __name__ == "__main__":
    main()
