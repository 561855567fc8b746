#!/usr/bin/env bash
# Guard for the run-time ISA dispatch: an object compiled with AVX2/AVX-512 flags (csrc/cpu/<op>/*_avx2.cpp,
# *_avx512.cpp) must not define weak (COMDAT) symbols outside deepkern's per-ISA namespaces
# (DK_ISA_NAMESPACE in csrc/cpu/common/isa.h: dk::cpu::isa_avx2, dk::cpu::isa_avx512). Such a
# symbol - typically a std:: template instantiated there - may be the copy the linker keeps for the
# whole library, putting AVX-512 instructions on the portable path (SIGILL on an AVX2-only CPU).
# Usage: tools/check_isa_objects.sh <build dir>   (e.g. build-dev, or build/<wheel tag> after pip install)
set -euo pipefail
. "$(dirname "$0")/require.sh"
require_cmd nm "install binutils"
dir=${1:?usage: tools/check_isa_objects.sh <build dir>}
objs=$(find "$dir" -path '*_cpu.dir*' \( -name '*_avx2.cpp.o' -o -name '*_avx512.cpp.o' \))
[ -n "$objs" ] || { echo "check_isa_objects: no ISA objects under $dir" >&2; exit 1; }
bad=0
for o in $objs; do
  # weak symbols (W/V) are the mergeable ones; anonymous-namespace symbols are local (t) and safe
  leaks=$(nm -C "$o" | awk '$2 ~ /^[WVuw]$/' | grep -v -E 'dk::cpu::[a-z_]*(avx2|avx512)' || true)
  if [ -n "$leaks" ]; then
    echo "check_isa_objects: $o defines mergeable symbols outside its ISA namespace:" >&2
    echo "$leaks" | head -20 >&2
    bad=1
  fi
done
[ "$bad" = 0 ] && echo "check_isa_objects: $(echo "$objs" | wc -l) ISA objects, no mergeable symbols leak"
exit $bad
