// Depthwise convolution kernels compiled for avx512 (called only when the CPU reports it).
#define DK_DW_NS dw_avx512
#include "cpu/conv2d/conv2d_depthwise_impl.h"
#include "cpu/conv2d/conv2d_depthwise_isa.h"

namespace dk::cpu::dw_avx512 {
DK_INSTANTIATE_DEPTHWISE_ISA(float)
DK_INSTANTIATE_DEPTHWISE_ISA(double)
}  // namespace dk::cpu::dw_avx512
