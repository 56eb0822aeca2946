"""The benchmarks run end to end on tiny sizes and write the JSON they promise (numbers are not
checked against any speed: only that they exist, are positive, and agree where they must)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fresh_python import PACKAGE_PARENT

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_benchmark(name: str, *args: str) -> str:
    """``python benchmarks/<name> args`` from a neutral folder, importing the tested package."""
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT + os.pathsep + os.environ.get("PYTHONPATH",
                                                                                   ""))
    result = subprocess.run([sys.executable, str(BENCHMARKS / name), *args], env=env,
                            capture_output=True, text=True, cwd=tempfile.gettempdir(),
                            timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None,
                    reason="mpi4py is not installed (pip install '.[distributed]')")
def test_bench_distributed_quick(tmp_path):
    out = tmp_path / "bench_distributed.json"
    printed = run_benchmark("bench_distributed.py", "--quick", "--cases", "compact",
                            "--num-blocks", "1", "--steps", "1", "--max-bytes", "16384",
                            "--out", str(out))
    report = json.loads(out.read_text())
    assert f"wrote {out}" in printed and "mpirun -np 2" in printed

    sizes = [row["bytes"] for row in report["all_reduce"]["rows"]]
    assert sizes == [1024, 4096, 16384] and report["all_reduce"]["ranks"] == 2
    for row in report["all_reduce"]["rows"]:
        for key in ("all_reduce_ms", "algbw_gbps", "busbw_gbps", "memcpy_ms", "memcpy_gbps"):
            assert row[key] > 0, (row["bytes"], key)
        assert row["busbw_gbps"] == pytest.approx(row["algbw_gbps"])  # 2(N-1)/N = 1 at N = 2

    (row,) = report["training"]["rows"]
    assert row["case"] == "compact" and report["training"]["model"]["num_blocks"] == 1
    contenders = row["contenders"]
    assert {"1x2", "2x1"} <= set(contenders)
    for name, c in contenders.items():
        assert c["ms_per_step"] > 0 and c["compute_ms"] > 0 and c["timed_steps"] == 1, name
        ranks = 1 if name == "1x2" else 2
        assert len(c["peak_mb_per_rank"]) == ranks and min(c["peak_mb_per_rank"]) > 0, name
        # AdamW keeps two float32 moments per parameter: every rank all of them in plain data
        # parallel, ZeRO-1 splits them over the ranks.
        full_state_mb = 2 * 4 * c["parameters"] / 2 ** 20
        states = c["optimizer_state_mb_per_rank"]
        if name == "2x1-zero1":
            assert sum(states) == pytest.approx(full_state_mb), name
        else:
            assert states == pytest.approx([full_state_mb] * ranks), name
        if name != "1x2":
            assert c["communication_ms"] > 0 and c["time_over_1x2"] > 0, name
    if "2x1-zero1" in contenders:
        assert row["zero1_over_ddp"]["optimizer_memory"] == pytest.approx(0.5, abs=0.01)
    assert report["summary"]["compact_time_2x1_over_1x2"]["value"] > 0
