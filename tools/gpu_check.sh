#!/usr/bin/env bash
# Everything the lent GPU machine should run for a CUDA change, in ONE device call (see
# docs/CUDA.md): build without isolation, the cuda-marked tests, compute-sanitizer memcheck
# and racecheck over them when available, and the pooling benchmark (which adds its GPU case when
# cupy sees a device). Logs and JSON go to $OUT (the device tool brings that folder back).
# Usage on the device: bash tools/gpu_check.sh
set -uo pipefail
export PYTHONUNBUFFERED=1
out=${OUT:-/tmp/deepkern-gpu}
mkdir -p "$out"
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out/gpu.txt" 2>&1
DEEPKERN_CUDA=ON python3 -m pip install --no-build-isolation --no-deps . >"$out/build.log" 2>&1 || {
  echo "build failed"; tail -40 "$out/build.log"; exit 1; }
python3 -c "import deepkern as dk; print('cuda_available', dk.cuda_available())" | tee "$out/env.txt"
python3 -m pytest -q -m cuda tests 2>&1 | tee "$out/cuda_tests.log" | tail -15 || status=1
if command -v compute-sanitizer >/dev/null 2>&1; then
  for tool in memcheck racecheck; do
    compute-sanitizer --tool "$tool" --error-exitcode 99 python3 -m pytest -q -x -m cuda tests/test_pooling_cuda.py \
      >"$out/sanitizer_$tool.log" 2>&1 || { status=1; echo "compute-sanitizer $tool: errors (see $out/sanitizer_$tool.log)"; }
    tail -3 "$out/sanitizer_$tool.log"
  done
fi
python3 benchmarks/bench_pooling.py --json "$out/pooling.json" 2>&1 | tee "$out/bench_pooling.log" | tail -25
exit $status
