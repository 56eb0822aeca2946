"""The C kernels under AddressSanitizer + UndefinedBehaviorSanitizer (slow: skipped by default).

Runs scripts/sanitize_kernels.sh, which builds an instrumented copy of the kernels (several
minutes: gemm.c is large) and runs every other tests/test_kernels*.py test against it (the
float32/float64 GEMM, the bfloat16/float16 one of test_kernels_lowp.py, softmax, Adam). Any
out-of-bounds access, use-after-free or undefined behaviour in csrc/ fails this test with the
sanitizer's report.

    pytest -m slow tests/test_kernels_sanitize.py
"""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "sanitize_kernels.sh")


@pytest.mark.slow
def test_kernel_tests_run_clean_under_asan_and_ubsan():
    if shutil.which("bash") is None or shutil.which(os.environ.get("CC", "gcc")) is None:
        pytest.skip("needs bash and gcc")
    out = subprocess.run(["bash", SCRIPT], capture_output=True, text=True, timeout=3600)
    report = out.stdout[-8000:] + out.stderr[-4000:]
    assert out.returncode == 0, report
    assert "sanitizers: no errors reported" in out.stdout, report
