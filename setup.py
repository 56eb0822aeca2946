"""Build hook for the C kernels: everything else about the package is in pyproject.toml.

cffi's setuptools integration compiles csrc/*.c into the extension module tinygrad_lite._C when
the package is installed (`pip install .` or `pip install -e .`); see csrc/build.py for the
compiler flags.
"""

from setuptools import setup

setup(cffi_modules=["csrc/build.py:ffibuilder"])
