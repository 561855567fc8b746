// cpuid once per process: the best ISA this CPU runs, capped by DEEPKERN_CPU_ISA (cpu_features.h).
#include "cpu/common/cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace dk::cpu {

namespace {

Isa detect() {
  Isa isa = Isa::Generic;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa = Isa::Avx2Fma;
  if (isa == Isa::Avx2Fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    isa = Isa::Avx512;
#endif
  if (const char* cap = std::getenv("DEEPKERN_CPU_ISA")) {
    Isa limit = Isa::Avx512;
    if (std::strcmp(cap, "generic") == 0)
      limit = Isa::Generic;
    else if (std::strcmp(cap, "avx2") == 0)
      limit = Isa::Avx2Fma;
    if (static_cast<int>(limit) < static_cast<int>(isa)) isa = limit;
  }
  return isa;
}

}  // namespace

Isa best_isa() {
  static const Isa isa = detect();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2Fma: return "avx2";
    default: return "generic";
  }
}

}  // namespace dk::cpu
