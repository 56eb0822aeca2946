#!/usr/bin/env bash
# Run the kernel tests against a build of the C kernels instrumented with AddressSanitizer and
# UndefinedBehaviorSanitizer (out-of-bounds reads/writes, use-after-free, signed overflow,
# misaligned access, ... in csrc/*.c abort the test run with a report).
#
#   bash scripts/sanitize_kernels.sh            # all tests/test_kernels*.py
#   bash scripts/sanitize_kernels.sh -k softmax # extra arguments go to pytest
#   TGL_SANITIZE_DIR=/tmp/san bash scripts/sanitize_kernels.sh
#                                               # keep the instrumented build there and reuse
#                                               # it next time (it takes minutes to compile)
#
# The instrumented build happens in a scratch copy of the repository, so the normal build in
# tinygrad_lite/ (which other processes may be using) is left alone. Python itself is not
# instrumented, so the ASan runtime is preloaded (LD_PRELOAD); leak checking is off because
# CPython keeps many allocations alive until exit by design.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
cc="${CC:-gcc}"
if [ -n "${TGL_SANITIZE_DIR:-}" ]; then
    work="$TGL_SANITIZE_DIR"
    mkdir -p "$work"
else
    work="$(mktemp -d "${TMPDIR:-/tmp}/tgl-sanitize.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
fi
rm -f "$work"/asan.* "$work"/ubsan.*
existing="$(ls "$work"/tinygrad_lite/_C.*so 2>/dev/null || true)"

echo "== copying sources to $work"
# (the normal, uninstrumented build of tinygrad_lite/_C is not copied)
files=""
for f in csrc tinygrad_lite tests setup.py pyproject.toml README.md MANIFEST.in; do
    [ -e "$root/$f" ] && files="$files $f"
done
# shellcheck disable=SC2086
tar -C "$root" --exclude='_C.*' --exclude=__pycache__ -cf - $files | tar -C "$work" -xf -
find "$work" -name __pycache__ -prune -exec rm -rf {} +

if [ -n "$existing" ] && [ -n "${TGL_SANITIZE_DIR:-}" ]; then
    echo "== reusing the instrumented build $existing (delete it to rebuild)"
else
    echo "== building the kernels with -fsanitize=address,undefined (takes a few minutes)"
    rm -f "$work"/tinygrad_lite/_C.*so "$work"/tinygrad_lite/_C.c
    (cd "$work" && TGL_SANITIZE=1 CC="$cc" "$python" setup.py -q build_ext --inplace \
        >build.log 2>&1) || { cat "$work/build.log"; exit 1; }
fi

asan="$("$cc" -print-file-name=libasan.so)"
ubsan="$("$cc" -print-file-name=libubsan.so)"
if [ ! -e "$asan" ] || [ ! -e "$ubsan" ]; then
    echo "sanitizer runtimes not found (libasan/libubsan for $cc)" >&2
    exit 1
fi

cd "$work"
export LD_PRELOAD="$asan $ubsan"
# Reports also go to files: pytest captures stderr, and an aborting process loses that capture.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:log_path=$work/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$work/ubsan"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$work"

# Make sure the tests really load the instrumented module from the scratch copy.
"$python" - <<'PY'
import tinygrad_lite._C as C
path = C.__file__
print("== instrumented module:", path)
assert path.startswith(__import__("os").getcwd()), "the tests would not use the sanitizer build"
PY

echo "== running the kernel tests under ASan + UBSan"
set +e
"$python" -m pytest -q -p no:cacheprovider -o addopts="" -m "not slow" --capture=sys \
    tests/test_kernels*.py "$@" 2>&1 | tee "$work/pytest.log"
status=${PIPESTATUS[0]}
set -e
reports="$(ls "$work"/asan.* "$work"/ubsan.* 2>/dev/null || true)"
if [ -n "$reports" ]; then
    echo "== sanitizer reports:"
    for f in $reports; do echo "--- $f"; cat "$f"; done
    exit 1
fi
if grep -q -E "runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer" "$work/pytest.log"; then
    echo "== sanitizer errors (see above):"
    grep -E "runtime error:|ERROR: AddressSanitizer" "$work/pytest.log"
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "== tests failed (exit $status), no sanitizer report"
    exit "$status"
fi
echo "== sanitizers: no errors reported"
