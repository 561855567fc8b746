#!/usr/bin/env bash
# Everything a lent GPU machine runs for the CUDA half, in ONE device call, well inside 10 minutes:
# build (sm_90 only), the cuda test suite on real cupy, compute-sanitizer memcheck / racecheck /
# synccheck over the `sanitize`-marked cases, the static check on the built _cuda, and every
# benchmarks/bench_*.py that has a `--device` option (called as `--device cuda --json FILE`).
# Each step has its own timeout and the run has a total budget, so one hung step cannot eat the
# rest. Logs, JSON and summary.json go to $OUT (default /tmp/deepkern-gpu).
#
#   bash tools/gpu_check.sh            # on the GPU machine
#   bash tools/gpu_check.sh --dry-run  # here, no GPU: every step that needs none (collection,
#                                      # argument parsing, the static check if _cuda is built, JSON)
# Env: PYTHON (python3), GPU_CHECK_BUDGET_S (540), GPU_CHECK_BENCH_TIMEOUT_S (100),
# GPU_CHECK_BENCHES (the benchmark scripts, a glob; default benchmarks/bench_*.py), GPU_CHECK_ONLY
# (comma-separated step-name prefixes to run, e.g. "env,bench_" to re-time after an earlier call
# built and installed; default all). Steps: gpu_info build env static_check cuda_tests
# sanitize_memcheck sanitize_racecheck sanitize_synccheck bench_<name>.
set -uo pipefail
cd "$(dirname "$0")/.."

dry=0
case "${1:-}" in
  --dry-run) dry=1 ;;
  "") ;;
  *) echo "usage: bash tools/gpu_check.sh [--dry-run]" >&2; exit 2 ;;
esac

PY=${PYTHON:-python3}
out=${OUT:-/tmp/deepkern-gpu}
mkdir -p "$out"
budget=${GPU_CHECK_BUDGET_S:-540}
bench_timeout=${GPU_CHECK_BENCH_TIMEOUT_S:-100}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export DEEPKERN_CUDA_SIM=0  # the real deepkern._cuda on real cupy, never the simulator
unset DEEPKERN_REQUIRE_SIM
t_start=$(date +%s)
steps="$out/steps.tsv"
: >"$steps"

# step NAME TIMEOUT_S LOG -- CMD...: runs CMD with a timeout cut to the budget left; records
# name, status, exit code, seconds and log in steps.tsv. Never stops the script.
step() {
  local name=$1 limit=$2 log=$3
  shift 4
  if ! selected "$name"; then
    skip "$name" "$log" "not in GPU_CHECK_ONLY"
    return 0
  fi
  local left=$((budget - ($(date +%s) - t_start)))
  if [ "$left" -lt 15 ]; then
    printf '%s\tskipped\t\t0\t%s\tbudget spent\n' "$name" "$log" >>"$steps"
    echo "-- $name: skipped (budget spent)"
    return 0
  fi
  [ "$limit" -gt "$((left - 5))" ] && limit=$((left - 5))
  echo "-- $name (timeout ${limit}s): $*"
  local t0 rc status
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$out/$log" 2>&1
  rc=$?
  case $rc in
    0) status=ok ;;
    124 | 137) status=timeout ;;
    5) status=empty ;;  # pytest: nothing collected
    *) status=failed ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\t\n' "$name" "$status" "$rc" "$(($(date +%s) - t0))" "$log" >>"$steps"
  echo "   $status (rc $rc, $(($(date +%s) - t0)) s); last lines of $log:"
  tail -n 4 "$out/$log" | sed 's/^/   | /'
}

selected() {  # is step NAME among the GPU_CHECK_ONLY prefixes (all when unset)?
  [ -z "${GPU_CHECK_ONLY:-}" ] && return 0
  local p
  for p in ${GPU_CHECK_ONLY//,/ }; do
    case $1 in "$p"*) return 0 ;; esac
  done
  return 1
}

skip() {  # skip NAME LOG REASON
  printf '%s\tskipped\t\t0\t%s\t%s\n' "$1" "$2" "$3" >>"$steps"
  echo "-- $1: skipped ($3)"
}

find_sanitizer() {
  command -v compute-sanitizer && return 0
  local nvcc d
  nvcc=$(command -v nvcc) || nvcc=/usr/local/cuda/bin/nvcc
  for d in "$(dirname "$(readlink -f "$nvcc")")" /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer; do
    [ -x "$d/compute-sanitizer" ] && { echo "$d/compute-sanitizer"; return 0; }
  done
  return 1
}

# Test files holding cuda-marked / sanitize-marked tests (greps: faster than collecting the tree).
mapfile -t cuda_files < <(grep -l -E 'mark\.cuda\b' tests/test_*.py 2>/dev/null)
mapfile -t sanitize_files < <(grep -l -E 'mark\.sanitize\b' tests/test_*.py 2>/dev/null)

# ------------------------------------------------------------------ machine and build
if [ $dry = 1 ]; then
  skip gpu_info gpu.txt "dry run"
  skip build build.log "dry run"
else
  step gpu_info 20 gpu.txt -- nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  step build 300 build.log -- env DEEPKERN_CUDA=ON "$PY" -m pip install --no-build-isolation --no-deps \
    --config-settings=cmake.define.CMAKE_CUDA_ARCHITECTURES=90 .
fi
# On the GPU, env fails unless deepkern sees the device (else every cuda test would just skip).
step env 60 env.txt -- "$PY" -c "import deepkern as dk, numpy; print('deepkern', dk.__version__, 'from', dk.__file__); \
print('cuda_available', dk.cuda_available()); print('numpy', numpy.__version__); assert $dry or dk.cuda_available()"
built=1
# Without a build step (GPU_CHECK_ONLY) the installed deepkern from an earlier call is used.
if [ $dry = 0 ] && selected build && ! awk -F'\t' '$1 == "build" && $2 == "ok" {found = 1} END {exit !found}' "$steps"; then built=0; fi

# ------------------------------------------------------------------ static check (no GPU needed)
if [ $built = 0 ]; then
  skip static_check static_check.txt "build failed"
elif [ $dry = 1 ] && ! "$PY" -c "import sys; sys.path.insert(0, 'tools'); import cuda_static_check as c; c.find_cuda_module()" \
  >/dev/null 2>&1; then
  skip static_check static_check.txt "no deepkern._cuda built here"
else
  step static_check 90 static_check.txt -- "$PY" tools/cuda_static_check.py --json "$out/static_check.json"
fi

# ------------------------------------------------------------------ cuda suite and sanitizers
pytest_args=(-q -p no:cacheprovider)
if [ ${#cuda_files[@]} = 0 ]; then
  skip cuda_tests cuda_tests.log "no test file marks tests cuda"
elif [ $dry = 1 ]; then
  step cuda_tests 120 cuda_tests.log -- "$PY" -m pytest "${pytest_args[@]}" --collect-only -m cuda "${cuda_files[@]}"
elif [ $built = 1 ]; then
  step cuda_tests 150 cuda_tests.log -- "$PY" -m pytest "${pytest_args[@]}" -m cuda --junitxml="$out/cuda_tests.xml" \
    "${cuda_files[@]}"
else
  skip cuda_tests cuda_tests.log "build failed"
fi

sanitizer=$(find_sanitizer)
if [ $dry = 1 ] && [ ${#sanitize_files[@]} != 0 ]; then
  step sanitize_cases 60 sanitize_cases.log -- "$PY" -m pytest "${pytest_args[@]}" --collect-only \
    -m "cuda and sanitize" "${sanitize_files[@]}"
fi
for tool in memcheck racecheck synccheck; do
  name=sanitize_$tool
  if [ ${#sanitize_files[@]} = 0 ]; then
    skip "$name" "$name.log" "no test marked sanitize"
  elif [ $dry = 1 ]; then
    skip "$name" "$name.log" "dry run (cases: sanitize_cases.log; sanitizer: ${sanitizer:-not found})"
  elif [ -z "$sanitizer" ]; then
    skip "$name" "$name.log" "compute-sanitizer not found"
  elif [ $built = 1 ]; then
    step "$name" 90 "$name.log" -- "$sanitizer" --tool "$tool" --error-exitcode 99 --target-processes all \
      --print-limit 30 "$PY" -m pytest "${pytest_args[@]}" -x -m "cuda and sanitize" "${sanitize_files[@]}"
  else
    skip "$name" "$name.log" "build failed"
  fi
done

# ------------------------------------------------------------------ GPU benchmarks
for b in ${GPU_CHECK_BENCHES:-benchmarks/bench_*.py}; do
  name=$(basename "$b" .py)
  if ! grep -q -- '"--device"' "$b"; then
    continue  # no GPU mode yet
  fi
  if [ $dry = 1 ]; then
    step "$name" 60 "$name.log" -- "$PY" "$b" --device cuda --json "$out/$name.json" --help
  elif [ $built = 1 ]; then
    step "$name" "$bench_timeout" "$name.log" -- "$PY" "$b" --device cuda --json "$out/$name.json"
  else
    skip "$name" "$name.log" "build failed"
  fi
done

# ------------------------------------------------------------------ summary
"$PY" tools/gpu_check_summary.py "$steps" "$out/summary.json" --dry-run "$dry" --seconds "$(($(date +%s) - t_start))" \
  --budget "$budget"
