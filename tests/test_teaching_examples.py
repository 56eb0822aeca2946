"""The teaching material runs and says what it shows: the two examples for learners (in a
subprocess with short settings, as a user runs them: every printed check passes) and every
snippet of docs/backprop.md (run, and its printed output compared with the output block the
page shows under it, so the page cannot drift from the code)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_lite

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "backprop.md"
# The examples must import the same tinygrad_lite as this test run (the installed one, with its
# compiled kernels), so that folder goes first on their path.
PACKAGE_PARENT = str(Path(tinygrad_lite.__file__).resolve().parents[1])


def run(args: list, cwd: Path) -> subprocess.CompletedProcess:
    """A Python subprocess in ``cwd`` (not the repository root: hypothesis writes its example
    database there, and the root's source folder has no compiled kernels)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------
# examples/hessian_vector_product.py
# --------------------------------------------------------------------------------------------

CHECK_LINE = re.compile(r"^check (.+?) +max error +(\S+) +\(tolerance (\S+)\) +(ok|FAILED)$",
                        re.M)


def test_hessian_vector_product_example_checks_pass(tmp_path):
    result = run([str(ROOT / "examples" / "hessian_vector_product.py"), "--samples", "40",
                  "--features", "3", "--hidden", "3", "--seed", "1"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = CHECK_LINE.findall(result.stdout)
    assert len(checks) == 7, result.stdout
    for name, error, tolerance, verdict in checks:
        assert verdict == "ok" and float(error) <= float(tolerance), name
    assert "7 of 7 checks passed" in result.stdout
    # the closed-form comparisons agree to rounding, far inside their tolerance
    exact = [float(e) for name, e, _, _ in checks if "analytic" in name]
    assert len(exact) == 2 and max(exact) < 1e-13


def test_hessian_vector_product_example_fails_on_a_wrong_hessian(monkeypatch, capsys):
    """The example's checks can fail: an HVP off by 1e-6 (relative) fails the closed-form ones,
    and main returns exit status 1."""
    hvp_example = load_example("hessian_vector_product")
    right = hvp_example.flat_hvp
    monkeypatch.setattr(hvp_example, "flat_hvp", lambda *a: right(*a) * (1 + 1e-6))
    assert hvp_example.main(["--samples", "30", "--features", "2", "--hidden", "2"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "checks passed" in out and "7 of 7" not in out


def test_hessian_vector_product_example_refuses_bad_settings(tmp_path):
    result = run([str(ROOT / "examples" / "hessian_vector_product.py"), "--hidden", "0"],
                 tmp_path)
    assert result.returncode == 2
    assert "argument --hidden: must be a positive integer, got '0'" in result.stderr


def test_hvp_equals_analytic_hessian_times_v_in_process():
    """The library functions of the example, used directly: logistic regression's H v."""
    hvp_example = load_example("hessian_vector_product")
    rng = np.random.default_rng(5)
    loss_fn, params, analytic = hvp_example.logistic_regression(25, 3, rng)
    v = rng.standard_normal(3)
    np.testing.assert_allclose(hvp_example.flat_hvp(loss_fn, params, v), analytic @ v,
                               rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------------------------
# examples/property_test_your_op.py
# --------------------------------------------------------------------------------------------

def test_property_example_runs_as_a_script(tmp_path):
    result = run([str(ROOT / "examples" / "property_test_your_op.py")], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    module = load_example("property_test_your_op")
    for check in module.CHECKS:
        assert f"ok   {check.__name__}: " in result.stdout
    assert "FAIL" not in result.stdout
    assert f"{len(module.CHECKS)} of {len(module.CHECKS)} checks passed" in result.stdout
    # the caught wrong backward, as gradcheck words it: input, element, both values
    assert re.search(r"gradcheck failed: input 0 at position \(3,\): analytic gradient \S+, "
                     r"numeric \(central difference\) \S+, difference", result.stdout)


def test_property_example_runs_under_pytest(tmp_path):
    result = run(["-m", "pytest", "-q", "-p", "no:cacheprovider",
                  str(ROOT / "examples" / "property_test_your_op.py")], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = len(load_example("property_test_your_op").CHECKS)  # pytest collects each of them
    assert re.search(rf"\b{checks} passed\b", result.stdout), result.stdout


def test_property_example_script_reports_a_broken_op(monkeypatch, capsys):
    """If the op's backward is wrong the script says FAIL and returns 1 (it is a real test)."""
    module = load_example("property_test_your_op")
    monkeypatch.setattr(module.HandSoftplus, "backward", module.ForgotTheChainRule.backward)
    assert module.main() == 1
    out = capsys.readouterr().out
    assert "FAIL test_gradient_is_sigmoid_on_edge_values" in out
    assert "FAIL test_gradcheck_over_shapes" in out


# --------------------------------------------------------------------------------------------
# docs/backprop.md
# --------------------------------------------------------------------------------------------

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)


def doc_snippets(text: str) -> list:
    """(line, code, shown output) for every ```python block; each must be followed by the
    ```text block that shows its output."""
    blocks = [(text[:m.start()].count("\n") + 1, m.group(1), m.group(2), m.start(), m.end())
              for m in FENCE.finditer(text)]
    snippets = []
    for k, (line, language, body, _, end) in enumerate(blocks):
        if language != "python":
            continue
        following = blocks[k + 1] if k + 1 < len(blocks) else None
        assert following and following[1] == "text" and not text[end:following[3]].strip(), \
            f"docs/backprop.md line {line}: a python snippet must be followed by its output"
        snippets.append((line, body, following[2]))
    return snippets


def run_snippet(code: str, line: int) -> str:
    """Run a snippet in a fresh namespace and return what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, f"docs/backprop.md:{line}", "exec"), {"__name__": "__main__"})
    return printed.getvalue()


SNIPPETS = doc_snippets(DOC.read_text(encoding="utf-8"))


def test_the_doc_has_its_snippets():
    assert len(SNIPPETS) >= 8


@pytest.mark.parametrize("line, code, shown", SNIPPETS, ids=[f"line{s[0]}" for s in SNIPPETS])
def test_doc_snippet_prints_what_the_doc_shows(line, code, shown):
    assert run_snippet(code, line) == shown


# --------------------------------------------------------------------------------------------
# README: the "Testing your own op" section's code runs, and its properties hold
# --------------------------------------------------------------------------------------------

def test_readme_testing_your_own_op_snippet_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Testing your own op", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    namespace = {"__name__": "readme_snippet"}
    exec(compile(code, "README.md (Testing your own op)", "exec"), namespace)
    tests = [name for name in namespace if name.startswith("test_")]
    assert tests == ["test_gradients", "test_identity"]
    for name in tests:
        namespace[name]()  # each is a hypothesis @given test: this runs its examples
