// float64 pooling: the only pooling kernels that may compute in double, so CMakeLists compiles *_f64.cu
// without ptxas's -warn-double-usage (every other CUDA file has it, as an error).
#include "cuda/pooling/avg_pool2d.cuh"
#include "cuda/pooling/max_pool2d.cuh"

namespace dk::cuda::pool {

template void max_fwd<double>(const Pool2dParams&, const void*, void*, int64_t*, cudaStream_t);
template void max_bwd<double>(const Pool2dParams&, const void*, const int64_t*, void*, cudaStream_t);
template void avg_fwd<double>(const Pool2dParams&, const void*, void*, cudaStream_t);
template void avg_bwd<double>(const Pool2dParams&, const void*, void*, cudaStream_t);

}  // namespace dk::cuda::pool
