// float64 attention: the only attention kernels that may compute in double (CMakeLists compiles
// *_f64.cu without ptxas's double-usage warning).
#include "cuda/attention/attention_dispatch.cuh"

namespace dk::cuda::attn {

template void forward_typed<double>(const AttentionParams&, const void*, const void*, const void*, const void*,
                                    const int64_t*, void*, void*, cudaStream_t);
template void backward_typed<double>(const AttentionParams&, const void*, const void*, const void*, const void*,
                                     const int64_t*, const void*, const void*, const void*, void*, void*, void*, void*,
                                     void*, bool, cudaStream_t);

}  // namespace dk::cuda::attn
