#!/usr/bin/env bash
# Style check: ruff (lint + format, [tool.ruff] in pyproject.toml) on the Python and clang-format
# (.clang-format) on csrc/. Checks only; `tools/lint.sh --fix` rewrites the files instead.
# Usage: tools/lint.sh [--fix] [paths...]   (default: the whole tree)
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/require.sh
require_cmd ruff "pip install '.[dev]'"
require_cmd clang-format "pip install '.[dev]'"
fix=0
if [ "${1:-}" = "--fix" ]; then fix=1; shift; fi
# Given paths go to the tool that reads them: folders and Python files to ruff, C++/CUDA files (tracked
# or new, not ignored) to clang-format.
py_paths=()
for p in "$@"; do
  if [ -d "$p" ] || [[ $p == *.py ]] || [[ $p == *.pyi ]]; then py_paths+=("$p"); fi
done
[ $# -gt 0 ] || py_paths=(python tests benchmarks examples)
mapfile -t cxx < <(git ls-files --cached --others --exclude-standard "${@:-csrc}" | grep -E '\.(h|cpp|cu|cuh)$' || true)
rc=0
if [ $fix = 1 ]; then
  if [ ${#py_paths[@]} -gt 0 ]; then
    ruff check --fix "${py_paths[@]}" || rc=1
    ruff format "${py_paths[@]}" || rc=1
  fi
  [ ${#cxx[@]} -eq 0 ] || clang-format -i "${cxx[@]}" || rc=1
else
  if [ ${#py_paths[@]} -gt 0 ]; then
    ruff check "${py_paths[@]}" || rc=1
    ruff format --check "${py_paths[@]}" || rc=1
  fi
  [ ${#cxx[@]} -eq 0 ] || clang-format --dry-run -Werror "${cxx[@]}" || rc=1
fi
[ $rc = 0 ] && echo "lint: clean"
exit $rc
