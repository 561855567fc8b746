#pragma once
// The pooling entry points declared in pooling.h: switch on the element type once and call the typed
// launcher (max_pool2d.cuh, avg_pool2d.cuh) on the caller's stream. Included by pooling.cu only.
#include "cuda/pooling/avg_pool2d.cuh"
#include "cuda/pooling/max_pool2d.cuh"
#include "cuda/pooling/pooling.h"

namespace dk::cuda {

void max_pool2d_forward(const Pool2dParams& p, DType dt, const void* x, void* y, int64_t* idx, uintptr_t stream) {
  pool::for_dtype(dt, "max_pool2d_forward", p.planes() * p.out_plane(), stream,
                  [&](auto* tag, unsigned, cudaStream_t s) { pool::max_fwd<DK_ELEM(tag)>(p, x, y, idx, s); });
}

void max_pool2d_backward(const Pool2dParams& p, DType dt, const void* dy, const int64_t* idx, void* dx,
                         uintptr_t stream) {
  pool::for_dtype(dt, "max_pool2d_backward", p.planes() * p.in_plane(), stream,
                  [&](auto* tag, unsigned, cudaStream_t s) { pool::max_bwd<DK_ELEM(tag)>(p, dy, idx, dx, s); });
}

void avg_pool2d_forward(const Pool2dParams& p, DType dt, const void* x, void* y, uintptr_t stream) {
  pool::for_dtype(dt, "avg_pool2d_forward", p.planes() * p.out_plane(), stream,
                  [&](auto* tag, unsigned, cudaStream_t s) { pool::avg_fwd<DK_ELEM(tag)>(p, x, y, s); });
}

void avg_pool2d_backward(const Pool2dParams& p, DType dt, const void* dy, void* dx, uintptr_t stream) {
  pool::for_dtype(dt, "avg_pool2d_backward", p.planes() * p.in_plane(), stream,
                  [&](auto* tag, unsigned, cudaStream_t s) { pool::avg_bwd<DK_ELEM(tag)>(p, dy, dx, s); });
}

}  // namespace dk::cuda
