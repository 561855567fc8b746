#pragma once
// CUDA conv2d launchers (plain C++ interface: the bindings are compiled without nvcc).
// Pointers are device pointers (b, dx, dw, db may be null: skipped); stream is a cudaStream_t as an
// integer. tf32: float32 may use TF32 tensor cores (the user's allow_tf32). conv2d_backward needs a
// workspace of conv2d_backward_workspace(...) accumulators (float32; float64 for float64), or none
// when that is 0; the launchers never allocate.
#include <cstdint>

#include "common/conv_params.h"
#include "common/dtype.h"

namespace dk::cuda {

void conv2d_forward(const Conv2dParams& p, DType dt, bool tf32, const void* x, const void* w, const void* b, void* y,
                    uintptr_t stream);
int64_t conv2d_backward_workspace(const Conv2dParams& p, DType dt, bool tf32);
void conv2d_backward(const Conv2dParams& p, DType dt, bool tf32, const void* x, const void* w, const void* dy, void* dx,
                     void* dw, void* db, void* ws, uintptr_t stream);

}  // namespace dk::cuda
