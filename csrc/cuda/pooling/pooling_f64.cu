// float64 pooling: the one pooling translation unit whose kernels compute in double, so
// CMakeLists compiles *_f64.cu without ptxas's -warn-double-usage. With DK_CUDA_F64_TU the
// .cuh files give only their kernels and the float64 instances of their typed launchers.
#define DK_CUDA_F64_TU 1
#include "cuda/pooling/avg_pool2d.cuh"
#include "cuda/pooling/max_pool2d.cuh"
