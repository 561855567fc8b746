// float64 plain GEMM (DFMA), compiled without ptxas's -warn-double-usage like every *_f64.cu.
#include "cuda/gemm/gemm_plain.cuh"

namespace dk::cuda::gemm {

template void plain_any<SimtF64, double>(const GemmParams&, const void*, const void*, void*, cudaStream_t);

}  // namespace dk::cuda::gemm
