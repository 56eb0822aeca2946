"""The teaching material runs and says what it shows: the three examples for learners (in a
subprocess with short settings, as a user runs them: every printed check passes; in process:
a broken formula or op makes them fail) and every snippet of docs/backprop.md (run, and its
printed output compared with the output block the page shows under it, so the page cannot
drift from the code)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

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
# examples/backprop_by_hand.py
# --------------------------------------------------------------------------------------------

HAND_LINE = re.compile(r"^  max \|hand - engine\| = (\S+)  \(tolerance (\S+)\)  (ok|FAILED)$", re.M)


def test_backprop_by_hand_example_checks_pass(tmp_path):
    out = tmp_path / "pictures"
    result = run([str(ROOT / "examples" / "backprop_by_hand.py"), "--samples", "3",
                  "--seed", "2", "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = HAND_LINE.findall(result.stdout)
    assert len(checks) == 7, result.stdout
    for difference, tolerance, verdict in checks:
        assert verdict == "ok" and float(tolerance) == 1e-12
        assert float(difference) <= 1e-12
    assert "7 of 7 hand gradients match the engine's" in result.stdout
    # every formula is printed, beside the engine tensor whose .grad it is compared with
    for name, (formula, engine_name) in load_example("backprop_by_hand").FORMULAS.items():
        assert f"{name} = {formula}    shape" in result.stdout
        assert f"engine  ({engine_name}.grad)" in result.stdout
    # the traced walk: 9 nodes (mean = Sum, MulScalar; square = Mul; Sub; 2 x (MatMul, Add);
    # Tanh), and the picture, which is where the script says
    assert "9 nodes, " in result.stdout
    picture = out / "mlp_graph.svg"
    assert f"graph drawn to {picture}" in result.stdout
    ElementTree.parse(picture)  # a well-formed SVG


def test_backprop_by_hand_catches_a_wrong_formula(monkeypatch, capsys, tmp_path):
    """Forgetting tanh' (dz = dh) breaks dz and everything below it, and nothing above it."""
    module = load_example("backprop_by_hand")
    monkeypatch.setattr(module, "tanh_grad", lambda h: np.ones_like(h))
    assert module.main(["--samples", "3", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    verdicts = dict(zip(module.FORMULAS, (v for _, _, v in HAND_LINE.findall(out))))
    assert verdicts == {"dL/dy_hat": "ok", "dW2": "ok", "db2": "ok", "dh": "ok",
                        "dz": "FAILED", "dW1": "FAILED", "db1": "FAILED"}
    assert "4 of 7 hand gradients match" in out


def test_backprop_by_hand_comparison_sees_a_tiny_error():
    """An error of 1e-9 in one element of one gradient is past the tolerance, and only there."""
    module = load_example("backprop_by_hand")
    x, y, params = module.make_problem(5, 3)
    loss, tensors = module.engine_forward(x, y, params)
    loss.backward()
    hand = module.hand_gradients(x, y, params)
    assert all(d <= module.TOLERANCE for _, d in module.compare(hand, tensors))
    hand["dW1"][2, 1] += 1e-9
    differences = dict(module.compare(hand, tensors))
    assert differences["dW1"] == pytest.approx(1e-9, rel=1e-3)
    assert all(d <= module.TOLERANCE for name, d in differences.items() if name != "dW1")


@pytest.mark.parametrize("flag, value, message", [
    ("--samples", "0", "argument --samples: must be a positive integer, got '0'"),
    ("--samples", "two", "argument --samples: must be an integer, got 'two'"),
    ("--seed", "-1", "argument --seed: must be an integer >= 0, got '-1'"),
])
def test_backprop_by_hand_refuses_bad_settings(flag, value, message, capsys):
    module = load_example("backprop_by_hand")
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args([flag, value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


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


# --------------------------------------------------------------------------------------------
# README: "The learner's view" shows real pictures and real output
# --------------------------------------------------------------------------------------------

def learners_view_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("## The learner's view", 1)[1].split("\n## ", 1)[0]


def test_readme_learners_view_images_are_committed_pngs():
    images = re.findall(r"!\[[^\]]*\]\((docs/[^)]+)\)", learners_view_section())
    assert images == ["docs/gpt_graph.png", "docs/mlp_graph.png"]
    for image in images:
        data = (ROOT / image).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", image
        assert len(data) < 1_000_000, image  # keep the repository small


TABLE_ROW = re.compile(r"^\d+\s{2,}.*$", re.M)  # a backward-table row: step, two spaces, ...


def comparable_row(row: str) -> list:
    """A backward-table row without its time column, and with "forward ran at" reduced to file
    name and function (line numbers move when the code is edited, paths with the directory)."""
    fields = re.split(r"\s{2,}", row.strip())
    del fields[5]  # time us
    return [re.sub(r"\S*?([\w.]+\.py):\d+ in ", r"\1 in ", f) for f in fields]


def assert_rows_shown_are_rows_printed(shown: str, printed: str) -> None:
    printed_rows = {int(r.split()[0]): comparable_row(r) for r in TABLE_ROW.findall(printed)}
    shown_rows = TABLE_ROW.findall(shown)
    assert len(shown_rows) >= 9
    for row in shown_rows:
        assert comparable_row(row) == printed_rows[int(row.split()[0])], row
    (shown_footer,) = re.findall(r"^(\d+) nodes, .* ms in backward nodes, (.*)$", shown, re.M)
    (printed_footer,) = re.findall(r"^(\d+) nodes, .* ms in backward nodes, (.*)$", printed,
                                   re.M)
    assert shown_footer == printed_footer


def test_readme_gpt_backward_table_is_what_the_command_prints(tmp_path):
    """The excerpt under `python -m tinygrad_lite.viz --gpt docs/gpt_graph.png --blocks 1`."""
    from tinygrad_lite import viz

    section = learners_view_section()
    assert "python -m tinygrad_lite.viz --gpt docs/gpt_graph.png --blocks 1" in section
    shown = re.findall(r"```text\n(.*?)```", section, re.S)[0]
    walk = viz.draw_gpt(str(tmp_path / "gpt.svg"), num_blocks=1, engine="matplotlib")
    assert_rows_shown_are_rows_printed(shown, walk.table())


def test_readme_backprop_by_hand_output_is_what_the_example_prints(capsys, tmp_path):
    section = learners_view_section()
    assert "python examples/backprop_by_hand.py --out docs --format png" in section
    shown = re.findall(r"```text\n(.*?)```", section, re.S)[1]
    assert load_example("backprop_by_hand").main(["--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    gradient_block = shown.split("\n...\n")[0]  # one gradient, verbatim
    assert gradient_block.startswith("dz = ") and gradient_block + "\n" in printed
    assert_rows_shown_are_rows_printed(shown, printed)
    assert shown.rstrip().splitlines()[-1] == printed.rstrip().splitlines()[-1]
