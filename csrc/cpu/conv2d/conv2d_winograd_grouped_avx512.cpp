// Grouped Winograd conv2d kernels compiled for avx512 (called only when the CPU reports it).
#include "cpu/conv2d/conv2d_winograd_grouped_impl.h"

namespace dk::cpu::DK_WG_NS {
DK_INSTANTIATE_WINOGRAD_GROUPED_ISA(float)
DK_INSTANTIATE_WINOGRAD_GROUPED_ISA(double)
}  // namespace dk::cpu::DK_WG_NS
