"""Run code in a new Python interpreter that imports the same tinygrad_lite as this test run.

A test that starts ``python -c`` must not run it from the repository root: there the source
folder (without compiled kernels) would shadow a non-editable installed copy. So the child runs
in a neutral folder, with the tested package's parent first on its path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import tinygrad_lite

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(tinygrad_lite.__file__)))


def run_python(code: str, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    """``python -c code`` as described above; ``env`` entries are added to the environment."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, cwd=tempfile.gettempdir(), timeout=timeout)
