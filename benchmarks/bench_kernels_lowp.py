"""The precision axis of bench_kernels.py: GEMM on bfloat16 / float16 inputs.

Contenders per shape (all interleaved, medians over repeats, as the rest of bench_kernels):

* ``bf16``, ``fp16`` -- ``kernels.matmul_lowp`` (float32 accumulation and output);
* ``fp32``           -- ``kernels.matmul`` on float32 inputs (our GEMM);
* ``openblas``       -- ``np.matmul`` on float32 inputs;
* ``torch_bf16``     -- ``torch.matmul`` on bfloat16 tensors (oneDNN; its output is bfloat16),
  when ``import torch`` works.

Shapes: squares 64-1024 and the tiny GPT's linear layers (x @ W.T with W (out, in): the
attention projection 256x80 @ 80x240, the MLP 256x80 @ 80x320 and 256x320 @ 320x80, the
vocabulary head 256x80 @ 80x10000). Used by bench_kernels.py's child process; not a script.
"""

from __future__ import annotations

SQUARES = [64, 128, 256, 512, 1024]
GPT_LINEAR = [(256, 80, 240), (256, 80, 320), (256, 320, 80), (256, 80, 10000)]
QUICK_SQUARES = [64, 256]
QUICK_GPT = [(256, 80, 320)]


def run_lowp(K, np, torch, measure, paired_ratio, args, min_sample, log) -> list:
    """Measure every shape; returns one JSON-ready dict per shape."""
    import ml_dtypes

    rng = np.random.default_rng(1)
    cases = [(s, s, s, f"{s}x{s}x{s}") for s in (QUICK_SQUARES if args.quick else SQUARES)]
    cases += [(m, k, n, f"{m}x{k}.{k}x{n} (x@W.T)")
              for m, k, n in (QUICK_GPT if args.quick else GPT_LINEAR)]
    rows = []
    for m, k, n, label in cases:
        x = rng.standard_normal((m, k)).astype(np.float32)
        w = rng.standard_normal((n, k)).astype(np.float32)  # a weight (out, in): x @ w.T
        xb, wb = x.astype(ml_dtypes.bfloat16), w.astype(ml_dtypes.bfloat16)
        xh, wh = x.astype(np.float16), w.astype(np.float16)
        contenders = {"bf16": lambda: K.matmul_lowp(xb, wb.T),
                      "fp16": lambda: K.matmul_lowp(xh, wh.T),
                      "fp32": lambda: K.matmul(x, w.T),
                      "openblas": lambda: np.matmul(x, w.T)}
        if torch is not None:
            tx, tw = torch.from_numpy(x).bfloat16(), torch.from_numpy(w).bfloat16()
            contenders["torch_bf16"] = lambda: torch.matmul(tx, tw.T)
        res = measure(contenders, args.repeats, args.pause, min_sample)
        flops = 2.0 * m * n * k
        for r in res.values():
            r["gflops"] = flops / r["median_s"] / 1e9
        ratios = {f"bf16_vs_{c}": paired_ratio(res, c, "bf16") for c in res if c != "bf16"}
        rows.append({"shape": label, "flops": flops, "results": res, "speedup": ratios})
        log(f"lowp {label:24s} " + "  ".join(f"{c} {r['gflops']:6.1f}" for c, r in res.items())
            + " GFLOPS  " + "  ".join(f"{c[5:]} x{v:.2f}" for c, v in ratios.items()))
    return rows


def print_lowp(run: dict) -> None:
    rows = run.get("lowp") or []
    if not rows:
        return
    names = list(rows[0]["results"])
    print(f"\nGEMM by precision, {run['threads']} thread(s), path {run.get('lowp_path')}: "
          f"GFLOPS (median); bf16/x = speed of matmul_lowp(bf16) relative to x")
    print(f"{'shape':26s}" + "".join(f" {c:>10s}" for c in names) + "  ratios")
    for row in rows:
        cells = "".join(f" {row['results'][c]['gflops']:10.1f}" for c in names)
        ratios = "  ".join(f"bf16/{c[8:]} {v:.2f}" for c, v in row["speedup"].items())
        print(f"{row['shape']:26s}{cells}  {ratios}")
