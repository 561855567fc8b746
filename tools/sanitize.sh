#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer over the whole CPU test suite.
#
# Builds deepkern._cpu with -DDEEPKERN_SANITIZE=ON (-fsanitize=address,undefined, -O1) in its own
# build dir and into a shadow copy of the Python package (build-asan/python/deepkern), so the
# normal in-place build in python/deepkern is untouched. Python itself is not instrumented, so
# the gcc sanitizer runtimes are LD_PRELOADed. Exit status 0 = clean, else the first report.
#
# Usage: tools/sanitize.sh [pytest args...]      (default: -q tests)
#   e.g. tools/sanitize.sh -q tests/test_pooling.py -x
# Env:   DEEPKERN_SANITIZE_DIR (default build-asan)
#        DEEPKERN_SANITIZE_SIM=1: also build the CUDA simulator module _cuda_sim instrumented (red
#          zones around static and dynamic shared memory, fiber switches announced to ASan), so
#          the cuda tests run their kernels under ASan + UBSan, e.g.
#          DEEPKERN_SANITIZE_SIM=1 DEEPKERN_SIM_ORDER=reversed tools/sanitize.sh -q -m "cuda or simt" tests
# Needs: what tools/dev_build.sh needs, plus pytest (pip install ".[dev]").
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/require.sh
require_cmd cmake
require_cmd ninja
require_py_module pybind11
require_py_module pytest
root=$(pwd)
dir=${DEEPKERN_SANITIZE_DIR:-build-asan}
pkg="$root/$dir/python/deepkern"

# The shadow package: the Python sources of python/deepkern (no compiled modules), refreshed.
rm -rf "$dir/python"
mkdir -p "$dir/python"
cp -r python/deepkern "$dir/python/"
find "$pkg" \( -name '*.so' -o -name '__pycache__' \) -prune -exec rm -rf {} +

sim=OFF
[ "${DEEPKERN_SANITIZE_SIM:-0}" = "1" ] && sim=ON
cmake -S . -B "$dir/cmake" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEEPKERN_CUDA=OFF -DDEEPKERN_CUDA_SIM=$sim \
  -DDEEPKERN_SANITIZE=ON -DDEEPKERN_DEV_OUTPUT="$pkg" \
  -Dpybind11_DIR="$(python3 -c 'import pybind11; print(pybind11.get_cmake_dir())')" >/dev/null
cmake --build "$dir/cmake"

cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$dir/cmake/CMakeCache.txt")
asan=$("$cxx" -print-file-name=libasan.so)
ubsan=$("$cxx" -print-file-name=libubsan.so)
[ -e "$asan" ] && [ -e "$ubsan" ] || { echo "sanitize.sh: $cxx has no libasan/libubsan" >&2; exit 2; }

log="$root/$dir/sanitizer"
rm -f "$log".*
# detect_leaks=0: CPython and its extensions keep allocations alive until exit by design.
# allocator_may_return_null=1: a huge allocation returns NULL (numpy's MemoryError, which the tests
#   expect) instead of aborting the process.
# halt_on_error / abort_on_error: the first report fails the run (UBSan otherwise only prints).
# log_path: reports from any process (tests start subprocesses) land in $log.<pid>.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:abort_on_error=1:log_path=$log:${ASAN_OPTIONS:-}"
# UBSan (as loaded here, beside ASan) ignores log_path and writes to fd 2: pytest runs with
# --capture=sys so C-level stderr is not swallowed, and stderr is teed into $log.stderr.
export DEEPKERN_SANITIZER_BUILD=1  # tests that assert -O3-exact cancellation relax to rounding
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
[ $# -gt 0 ] || set -- -q tests

echo "== sanitized modules: $(ls "$pkg"/_cpu*.so "$pkg"/_cuda_sim*.so 2>/dev/null)"
echo "== LD_PRELOAD=$asan $ubsan"
status=0
LD_PRELOAD="$asan $ubsan" PYTHONPATH="$root/$dir/python:$root/tests" \
  python3 -m pytest -p no:cacheprovider --capture=sys "$@" 2> >(tee "$log.stderr" >&2) || status=$?
sleep 1  # let tee flush

# A report is an ASan/UBSan error; "WARNING: AddressSanitizer failed to allocate" is the expected
# note behind the tests' deliberate MemoryError (allocator_may_return_null=1) and is not one.
reports=$(grep -l -E "ERROR: AddressSanitizer|runtime error:|SUMMARY: " "$log".* 2>/dev/null || true)
if [ -n "$reports" ]; then
  echo "== sanitizer reports:"
  grep -h -A12 -E "ERROR: AddressSanitizer|runtime error:" $reports | head -120
  echo "sanitize.sh: NOT CLEAN (reports above, also in: $reports)"
  exit 1
fi
notes=$(cat "$log".* 2>/dev/null | grep "WARNING: AddressSanitizer" | sed 's/==[0-9]*==//' | sort | uniq -c | tr -s ' ' || true)
[ -z "$notes" ] || echo "== sanitizer notes (not errors): $notes"
if [ "$status" -ne 0 ]; then
  echo "sanitize.sh: no sanitizer report, but pytest exited $status"
  exit "$status"
fi
echo "sanitize.sh: clean (ASan + UBSan, no reports; pytest exit 0)"
