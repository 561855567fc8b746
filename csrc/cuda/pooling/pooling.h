#pragma once
// CUDA pooling launchers (plain C++ interface: the bindings are compiled without nvcc;
// defined in max_pool2d.cuh / avg_pool2d.cuh).
// Pointers are device pointers; stream is a cudaStream_t passed as an integer.
#include <cstdint>

#include "common/dtype.h"
#include "common/pool_params.h"

namespace dk::cuda {

void max_pool2d_forward(const Pool2dParams& p, DType dt, const void* x, void* y, int64_t* idx, uintptr_t stream);
void max_pool2d_backward(const Pool2dParams& p, DType dt, const void* dy, const int64_t* idx, void* dx,
                         uintptr_t stream);
void avg_pool2d_forward(const Pool2dParams& p, DType dt, const void* x, void* y, uintptr_t stream);
void avg_pool2d_backward(const Pool2dParams& p, DType dt, const void* dy, void* dx, uintptr_t stream);

}  // namespace dk::cuda
