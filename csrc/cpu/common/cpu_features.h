#pragma once
// What the running CPU can execute, read once with cpuid (not what the compiler targeted).
// Kernels compiled with ISA flags (files *_avx2.cpp, *_avx512.cpp) are only called when
// these say yes. DEEPKERN_CPU_ISA=generic|avx2|avx512 caps the choice (for testing).

namespace dk::cpu {

enum class Isa { Generic = 0, Avx2Fma = 1, Avx512 = 2 };

Isa best_isa();
const char* isa_name(Isa isa);

}  // namespace dk::cpu
