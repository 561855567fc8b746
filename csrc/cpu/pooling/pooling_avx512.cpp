// Pooling kernels compiled for avx512 (called only when the CPU reports it): pooling_impl.h in this
// copy's namespace.
#include "cpu/pooling/pooling_impl.h"
#include "cpu/pooling/pooling_isa.h"

namespace dk::cpu::DK_POOL_NS {
DK_INSTANTIATE_POOLING_ISA(float)
DK_INSTANTIATE_POOLING_ISA(double)
}  // namespace dk::cpu::DK_POOL_NS
