// float64 conv2d (DFMA): the only conv kernels that may compute in double, so CMakeLists compiles
// *_f64.cu without ptxas's -warn-double-usage.
#include "cuda/conv2d/conv2d_depthwise.cuh"
#include "cuda/conv2d/conv2d_gemm.cuh"

namespace dk::cuda::conv {

template void forward<gemm::SimtF64, double>(const Conv2dParams&, const double*, const double*, const double*, double*,
                                             cudaStream_t);
template void dgrad<gemm::SimtF64, double>(const Conv2dParams&, const double*, const double*, double*, cudaStream_t);
template void wgrad<gemm::SimtF64, double>(const Conv2dParams&, const double*, const double*, double*, double*,
                                           cudaStream_t);
template void bias_grad<double>(const Conv2dParams&, const double*, double*, cudaStream_t);
template void depthwise_forward<double>(const Conv2dParams&, const double*, const double*, const double*, double*,
                                        cudaStream_t);
template void depthwise_dgrad<double>(const Conv2dParams&, const double*, const double*, double*, cudaStream_t);
template void depthwise_wgrad<double>(const Conv2dParams&, const double*, const double*, double*, cudaStream_t);

}  // namespace dk::cuda::conv
