// Pooling kernels compiled for avx2 (called only when the CPU reports it).
#define DK_POOL_NS pool_avx2
#include "cpu/pooling/pooling_impl.h"
#include "cpu/pooling/pooling_isa.h"

namespace dk::cpu::pool_avx2 {
DK_INSTANTIATE_POOLING_ISA(float)
DK_INSTANTIATE_POOLING_ISA(double)
}  // namespace dk::cpu::pool_avx2
