"""cffi builder for tinygrad_lite's C kernels (API / out-of-line mode).

`pip install .` or `pip install -e .` runs this through setup.py's `cffi_modules`; it compiles
every kernel source in csrc/ into one extension module, `tinygrad_lite._C`. You can also run it
directly from the repository root (`python csrc/build.py`) to rebuild the module in place.

The declarations cffi needs (`cdef`) are read from the kernel headers themselves, with the
preprocessor lines stripped (cdef cannot take them), so the headers are the single place that
says what the C functions look like.

Compiler flags, and why:
  -O3                 full optimisation, including the loop vectoriser the kernels rely on.
  -fopenmp            threads (GEMM blocks, softmax rows). Test-compiled first; without it we
                      build single-threaded and say so (`-fopenmp-simd` still honours the
                      `#pragma omp simd` vectorisation hints, without the OpenMP runtime).
  -fno-math-errno     libm calls need not set errno, so e.g. sqrt can be inlined. Results are
                      unchanged.
  -fno-trapping-math  lets GCC turn the selects in our vectorisable exp into blend instructions
                      (it may evaluate both sides). We never read floating-point exception
                      flags, so results are unchanged.
  never -ffast-math   it allows reassociation and assumes no NaN/Inf: the softmax max-shift
                      and the NaN checks would be optimised away, and it has broken GELU and
                      softmax gradients in other projects.
  no -march=native    the module must also run on a CPU without AVX-512/AVX2 (a wheel may be
                      reused elsewhere). The kernels select AVX-512/AVX2 code at run time
                      instead (gemm.c: CPU-feature dispatch; softmax.c: target_clones).

Environment knobs (for development, not needed to install):
  TGL_SANITIZE=1      build with AddressSanitizer + UBSan (see scripts/sanitize_kernels.sh).
  TGL_NO_OPENMP=1     build without OpenMP.
  TGL_EXTRA_CFLAGS    extra compiler flags, split on whitespace.
"""

from __future__ import annotations

import os
import re
import subprocess
import sysconfig
import tempfile

from cffi import FFI

CSRC = os.path.dirname(os.path.abspath(__file__))

# One header per kernel family, and the sources that implement them.
HEADERS = ["gemm.h", "softmax.h", "adam.h"]
SOURCES = ["gemm.c", "softmax.c", "adam.c"]


def _cdef_from_headers() -> str:
    """The headers' declarations without preprocessor lines (cffi's cdef cannot parse those;
    it does understand comments and the <stdint.h> types)."""
    parts = []
    for name in HEADERS:
        with open(os.path.join(CSRC, name)) as f:
            text = f.read()
        parts.append(re.sub(r"^\s*#.*$", "", text, flags=re.MULTILINE))
    return "\n".join(parts)


def _compiler() -> list[str]:
    """The C compiler Python's own build uses (as setuptools would), as an argument list."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return cc.split()


def _compiles(flags: list[str], source: str) -> bool:
    """Does a tiny program compile and link with these flags?"""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(source)
        try:
            proc = subprocess.run(_compiler() + flags + [src, "-o", os.path.join(tmp, "probe")],
                                  capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return proc.returncode == 0


_OPENMP_PROBE = """
#include <omp.h>
int main(void) {
    int n = 0;
#pragma omp parallel reduction(+ : n)
    n += 1;
    return n > 0 && omp_get_max_threads() > 0 ? 0 : 1;
}
"""


def _env_flag(name: str) -> bool:
    """A yes/no build knob: 1/true/yes/on or 0/false/no/off (any case), unset means no. Any other
    value stops the build with an error (a typo must not silently build something else)."""
    text = os.environ.get(name, "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"tinygrad_lite build: the environment variable {name}="
                     f"{os.environ[name]!r} is not valid; accepted values: 1, true, yes, on, 0, "
                     f"false, no, off (or unset)")


def _flags() -> tuple[list[str], list[str]]:
    compile_args = ["-O3", "-std=gnu11", "-fno-math-errno", "-fno-trapping-math"]
    link_args: list[str] = []
    if not _env_flag("TGL_NO_OPENMP") and _compiles(["-fopenmp"], _OPENMP_PROBE):
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    else:
        print("tinygrad_lite build: note: compiling without OpenMP (the compiler has none, or "
              "TGL_NO_OPENMP=1); the kernels will run on one thread.")
        if _compiles(["-fopenmp-simd"], "int main(void) { return 0; }\n"):
            compile_args.append("-fopenmp-simd")
    if _env_flag("TGL_SANITIZE"):
        # -O1 -g keeps stack traces readable; recover=none makes any report fatal.
        san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
               "-fno-omit-frame-pointer", "-g", "-O1"]
        compile_args += san
        link_args += ["-fsanitize=address,undefined"]
    compile_args += os.environ.get("TGL_EXTRA_CFLAGS", "").split()
    return compile_args, link_args


def _source_paths() -> list[str]:
    paths = []
    for name in SOURCES:
        path = os.path.join(CSRC, name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"tinygrad_lite build: kernel source {path} is missing")
        # setuptools wants paths relative to setup.py's directory (the working directory
        # during `pip install`); fall back to absolute paths when run from elsewhere.
        rel = os.path.relpath(path)
        paths.append(path if rel.startswith("..") else rel)
    return paths


def make_builder() -> FFI:
    builder = FFI()
    builder.cdef(_cdef_from_headers())
    compile_args, link_args = _flags()
    builder.set_source(
        "tinygrad_lite._C",
        "".join(f'#include "{h}"\n' for h in HEADERS),
        sources=_source_paths(),
        include_dirs=[CSRC],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        libraries=["m"],
    )
    return builder


ffibuilder = make_builder()


if __name__ == "__main__":
    # In-place build, for development: the same setuptools/cffi build that `pip install -e .`
    # runs, so the module gets the same file name (tinygrad_lite/_C.abi3.so) and never a second,
    # stale copy that would shadow it. It is built under build/ and then renamed into place:
    # a rename never changes the file that running processes have loaded (overwriting it in
    # place could crash them).
    import glob
    import subprocess
    import sys

    root = os.path.dirname(CSRC)
    out = os.path.join(root, "build", "inplace")
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--force", "--build-lib", out,
                    "--build-temp", os.path.join(out, "temp")], cwd=root, check=True)
    for path in glob.glob(os.path.join(out, "tinygrad_lite", "_C.*")):
        target = os.path.join(root, "tinygrad_lite", os.path.basename(path))
        os.replace(path, target)
        print("built", os.path.relpath(target, root))
