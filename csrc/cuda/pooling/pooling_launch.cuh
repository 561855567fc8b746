#pragma once
// The pooling entry points declared in pooling.h: switch on the element type once, launch the
// typed kernel on the caller's stream, and turn a launch error into an exception naming the op.
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/pooling/pooling.h"
#include "cuda/pooling/pooling_kernels.cuh"

namespace dk::cuda {

namespace pooling {

// Calls fn with a null pointer of the element type dt names.
template <typename Fn>
void dispatch(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::Float32: fn(static_cast<float*>(nullptr)); break;
    case DType::Float64: fn(static_cast<double*>(nullptr)); break;
    case DType::Float16: fn(static_cast<__half*>(nullptr)); break;
    case DType::BFloat16: fn(static_cast<__nv_bfloat16*>(nullptr)); break;
    default: throw std::invalid_argument(std::string(op) + ": unsupported dtype");
  }
}

template <typename Go>
void launch(DType dt, const char* name, int64_t n, Go&& go) {
  if (n == 0) return;
  dispatch(dt, name, go);
  check_launch(name);
}

}  // namespace pooling

#define DK_ELEM(tag) std::remove_pointer_t<decltype(tag)>

void max_pool2d_forward(const Pool2dParams& p, DType dt, const void* x, void* y, int64_t* idx, uintptr_t stream) {
  pooling::launch(dt, "max_pool2d_forward", p.planes() * p.out_plane(),
                  [&](auto* tag) { pooling::max_fwd<DK_ELEM(tag)>(p, x, y, idx, as_stream(stream)); });
}

void max_pool2d_backward(const Pool2dParams& p, DType dt, const void* dy, const int64_t* idx, void* dx,
                         uintptr_t stream) {
  pooling::launch(dt, "max_pool2d_backward", p.planes() * p.in_plane(),
                  [&](auto* tag) { pooling::max_bwd<DK_ELEM(tag)>(p, dy, idx, dx, as_stream(stream)); });
}

void avg_pool2d_forward(const Pool2dParams& p, DType dt, const void* x, void* y, uintptr_t stream) {
  pooling::launch(dt, "avg_pool2d_forward", p.planes() * p.out_plane(),
                  [&](auto* tag) { pooling::avg_fwd<DK_ELEM(tag)>(p, x, y, as_stream(stream)); });
}

void avg_pool2d_backward(const Pool2dParams& p, DType dt, const void* dy, void* dx, uintptr_t stream) {
  pooling::launch(dt, "avg_pool2d_backward", p.planes() * p.in_plane(),
                  [&](auto* tag) { pooling::avg_bwd<DK_ELEM(tag)>(p, dy, dx, as_stream(stream)); });
}

#undef DK_ELEM

}  // namespace dk::cuda
