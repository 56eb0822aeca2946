"""The examples run end to end (in a subprocess, as a user runs them) and print what they
promise: sin_fit's gradient check, its table and the optimum; the Transformer regressor's
falling loss."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


import tinygrad_lite

ROOT = Path(__file__).resolve().parents[1]
# The examples must import the same tinygrad_lite as this test run (the installed one, with its
# compiled kernels), so that folder goes first on their path.
PACKAGE_PARENT = str(Path(tinygrad_lite.__file__).resolve().parents[1])


def run_example(name: str, *args: str, threads: str | None = None) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    if threads:
        env["TGL_NUM_THREADS"] = threads
    result = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def number_after(label: str, text: str) -> float:
    match = re.search(re.escape(label) + r"\s*([-+0-9.e]+)", text)
    assert match, f"{label!r} not found in:\n{text[-2000:]}"
    return float(match.group(1))


def test_sin_fit_reference_settings_print_gradient_check_and_table(tmp_path):
    out = run_example("sin_fit.py", "--epochs", "250", "--out", str(tmp_path))
    assert number_after("largest |difference|  =", out) < 1e-10
    for line in ("split      n          MSE", "train   1400", "val      300", "test     300"):
        assert line in out
    assert out.count("  x = ") == 5 and "sin(x) +1.00000" in out
    logged = re.findall(r"^\s+(\d+)\s+1e-06\s", out, re.M)  # a log line every 100 epochs
    assert logged == ["1", "100", "200", "250"]
    assert "NOT within 1%" in out and "expected result of the reference settings" in out
    assert (tmp_path / "best.npz").exists() and (tmp_path / "metrics.csv").exists()


def test_sin_fit_documented_settings_reach_the_least_squares_optimum(tmp_path):
    out = run_example("sin_fit.py", "--optimizer", "adamw", "--lr", "0.05", "--out",
                      str(tmp_path))
    fitted = number_after("test MSE: fitted", out)
    optimum = number_after("least-squares optimum", out)
    assert fitted <= 1.01 * optimum
    assert "within 1% of the closed-form optimum" in out


def test_transformer_regression_loss_falls():
    # One kernel thread: the test must stay fast even when other tests load both cores.
    out = run_example("transformer_regression.py", "--epochs", "3", "--samples", "320",
                      threads="1")
    losses = [float(m) for m in re.findall(r"^\s+[1-9]\d*\s+([0-9.]+)\s", out, re.M)]
    assert len(losses) == 3 and losses[-1] < 0.5 * losses[0]
    assert "validation predictions (eval mode, no_grad)" in out
    before = number_after("validation MSE: before training", out)
    assert number_after("-> after", out) < 0.25 * before
