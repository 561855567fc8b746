#!/usr/bin/env bash
# In-place developer build: compiles deepkern._cpu (and _cuda with DEEPKERN_CUDA=ON) into
# python/deepkern/ so `PYTHONPATH=python python -m pytest tests` runs against this tree.
# Usage: tools/dev_build.sh [build-dir]   (default build-dev; env DEEPKERN_CUDA=AUTO|ON|OFF, default OFF;
#        DEEPKERN_CUDA_SIM=ON|OFF, default OFF: also build the simulator module _cuda_sim)
# Needs: python3 with pybind11, cmake, ninja, a C++17 compiler (pip install ".[dev]" brings the first three).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/require.sh
require_cmd cmake
require_cmd ninja
require_cmd "${CXX:-c++}" "install a C++17 compiler (g++ or clang++)"
require_py_module pybind11
dir=${1:-build-dev}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDEEPKERN_CUDA="${DEEPKERN_CUDA:-OFF}" \
  -DDEEPKERN_CUDA_SIM="${DEEPKERN_CUDA_SIM:-OFF}" \
  -Dpybind11_DIR="$(python3 -c 'import pybind11; print(pybind11.get_cmake_dir())')" >/dev/null
cmake --build "$dir"
