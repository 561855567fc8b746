#pragma once
// The one per-ISA mechanism of the CPU kernels. A kernel body is written once (an *_impl.h or a
// .cpp) and compiled once per instruction set: <op>.cpp / <op>_generic.cpp (portable),
// <op>_avx2.cpp, <op>_avx512.cpp. CMake gives the last two their ISA flags and DK_ISA_AVX2 /
// DK_ISA_AVX512 by file name. Everything such a file defines lives in DK_ISA_NAMESPACE
// (dk::cpu::isa_generic / isa_avx2 / isa_avx512), so copies compiled with different flags never
// merge at link time (tools/check_isa_objects.sh checks the objects). The portable entry point
// names the copies with DK_ISA_DECLARE and picks one, once, with DK_ISA_PICK.
#include "cpu/common/cpu_features.h"

#if defined(DK_ISA_AVX512)
#define DK_ISA_NAMESPACE isa_avx512
#elif defined(DK_ISA_AVX2)
#define DK_ISA_NAMESPACE isa_avx2
#else
#define DK_ISA_NAMESPACE isa_generic
#endif

// Declares the same entities in each per-ISA namespace (the declarations may contain commas).
#define DK_ISA_DECLARE(...)        \
  namespace dk::cpu::isa_generic { \
  __VA_ARGS__                      \
  }                                \
  namespace dk::cpu::isa_avx2 {    \
  __VA_ARGS__                      \
  }                                \
  namespace dk::cpu::isa_avx512 {  \
  __VA_ARGS__                      \
  }

namespace dk::cpu {

// The copy for best_isa() (DEEPKERN_CPU_ISA caps it).
template <typename Fn>
Fn pick_isa(Fn generic, Fn avx2, Fn avx512) {
  switch (best_isa()) {
    case Isa::Avx512: return avx512;
    case Isa::Avx2Fma: return avx2;
    default: return generic;
  }
}

}  // namespace dk::cpu

// A pointer of type Fn to the best copy of `name` (qualified inside the per-ISA namespace, e.g.
// attention::forward<float>). Callers keep it in a function-local static: picked once.
#define DK_ISA_PICK(Fn, name) \
  ::dk::cpu::pick_isa<Fn>(&::dk::cpu::isa_generic::name, &::dk::cpu::isa_avx2::name, &::dk::cpu::isa_avx512::name)
