"""A source checkout without the compiled kernels must not hide an installed copy silently.

After a non-editable `pip install .`, running Python in the repository root imports the
repository's tinygrad_lite/ (the current directory comes first on sys.path), which has no
compiled module. The tests build that situation in a temporary folder -- an "installed" copy
with the module, a "checkout" without it -- and run Python there with ``-S`` (no site hooks,
so the development install's own import finder stays out of the way).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_lite
from tinygrad_lite import kernels

PACKAGE_DIR = os.path.dirname(os.path.abspath(tinygrad_lite.__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# numpy, cffi, pytest, hypothesis...: the folder they are installed in.
DEPENDENCIES = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))


@pytest.fixture
def shadowed(tmp_path):
    """(checkout, installed package folder): the checkout shadows the installed copy."""
    if not kernels.c_available():
        pytest.skip("needs the compiled kernels to make the 'installed' copy")
    installed = tmp_path / "site"
    # The dependencies (numpy, cffi, pytest...) as links, without any installed tinygrad_lite
    # (a non-editable install puts it beside them), in tmp_path / "deps".
    (tmp_path / "deps").mkdir()
    for name in os.listdir(DEPENDENCIES):
        if not name.startswith(("tinygrad_lite", "__editable__")):
            os.symlink(os.path.join(DEPENDENCIES, name), tmp_path / "deps" / name)
    shutil.copytree(PACKAGE_DIR, installed / "tinygrad_lite",
                    ignore=shutil.ignore_patterns("__pycache__"))
    checkout = tmp_path / "repo"
    shutil.copytree(PACKAGE_DIR, checkout / "tinygrad_lite",
                    ignore=shutil.ignore_patterns("__pycache__", "_C*"))
    (checkout / "csrc").mkdir()  # what makes it look like the repository
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), checkout)
    return checkout, installed


def _run(args, checkout, installed):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TGL_", "PYTHON"))}
    env["PYTHONPATH"] = os.pathsep.join([str(installed), str(installed.parent / "deps")])
    return subprocess.run([sys.executable, "-S", *args], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=300)


def test_import_in_checkout_names_the_shadowing_and_the_fix(shadowed):
    checkout, installed = shadowed
    out = _run(["-c", "import tinygrad_lite"], checkout, installed)
    assert out.returncode != 0
    message = out.stderr.strip().splitlines()[-1]
    assert "circular import" not in message
    assert str(checkout / "tinygrad_lite") in message
    assert str(installed / "tinygrad_lite") in message
    assert "run from another directory" in message and "pip install -e ." in message


def test_import_outside_checkout_uses_installed_copy(shadowed, tmp_path):
    checkout, installed = shadowed
    out = _run(["-c", "import tinygrad_lite; print(tinygrad_lite.__file__)"], tmp_path,
               installed)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(installed / "tinygrad_lite" / "__init__.py")


def test_python_m_pytest_in_checkout_tests_the_installed_copy(shadowed):
    checkout, installed = shadowed
    (checkout / "tests").mkdir()
    shutil.copy(os.path.join(ROOT, "tests", "conftest.py"), checkout / "tests")
    (checkout / "tests" / "test_which.py").write_text(
        "import numpy as np\n"
        "import tinygrad_lite\n"
        "from tinygrad_lite import kernels\n\n"
        "def test_which():\n"
        f"    assert tinygrad_lite.__file__.startswith({str(installed)!r})\n"
        "    assert kernels.matmul(np.eye(2), np.ones((2, 2))).sum() == 4\n")
    out = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_which.py"],
               checkout, installed)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
    # ...and it says so: no silent switch to another copy.
    assert f"note: testing the installed tinygrad_lite in {installed / 'tinygrad_lite'}" in \
        out.stdout


def test_missing_module_without_installed_copy_says_how_to_build(shadowed, tmp_path):
    checkout, _ = shadowed
    shutil.rmtree(tmp_path / "site")  # no installed copy
    out = _run(["-c", "import tinygrad_lite"], checkout, tmp_path / "site")
    assert out.returncode != 0
    message = out.stderr.strip().splitlines()[-1]
    assert "circular import" not in message
    assert "not built" in message and "pip install -e ." in message
    assert f"no compiled module _C in {checkout / 'tinygrad_lite'}" in message
