"""Launching ``mpirun -np 2`` from a test, always with a timeout (a hung rank fails the test
instead of hanging the suite), and the mark that skips such tests when mpi4py is absent.

Open MPI refuses to start as root unless ``OMPI_ALLOW_RUN_AS_ROOT`` and its confirmation are
set; ``--oversubscribe`` lets 2 ranks start on a machine with fewer free cores. The scripts
import the same tinygrad_lite as the test run (``fresh_python.PACKAGE_PARENT`` first on their
path) and run in a neutral folder.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fresh_python import PACKAGE_PARENT

needs_mpi = pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None,
                               reason="mpi4py is not installed (pip install '.[distributed]')")


def mpirun(script, *args: str, timeout: float, threads: str = "1",
           ranks: int = 2) -> subprocess.CompletedProcess:
    """``mpirun -np <ranks> python <script> <args>``; ``threads=""`` leaves TGL_NUM_THREADS
    unset (then each rank takes its share of the cores)."""
    launcher = Path(sys.executable).parent / "mpirun"
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PYTHONPATH=PACKAGE_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TGL_NUM_THREADS", None)
    if threads:
        env["TGL_NUM_THREADS"] = threads
    return subprocess.run([str(launcher), "-np", str(ranks), "--oversubscribe", sys.executable,
                           str(script), *args], capture_output=True, text=True, env=env,
                          cwd=tempfile.gettempdir(), timeout=timeout)
