#pragma once
// Shared by the pooling kernels: the clipped window, the covering-window range and the dtype
// dispatch of a launch.
#include <stdexcept>
#include <string>
#include <type_traits>

#include "common/dtype.h"
#include "common/pool_params.h"
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/numeric.cuh"

namespace dk::cuda::pool {

constexpr int kThreads = 256;

// The input window of output element o (flat over planes x Ho x Wo), clipped to the input:
// rows [hb, he) and columns [wb, we) of input plane `plane`.
struct Window {
  int64_t plane, hb, he, wb, we;
};
__device__ __forceinline__ Window clipped_window(const Pool2dParams& p, int64_t o) {
  const int64_t ow = o % p.Wo, oh = (o / p.Wo) % p.Ho;
  const int64_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
  return {o / p.out_plane(), max(h0, (int64_t)0), min(h0 + p.kh, p.H), max(w0, (int64_t)0), min(w0 + p.kw, p.W)};
}

// Output positions o along one axis whose window [o*s - pad, o*s - pad + k) covers i.
__device__ __forceinline__ void covering(int64_t i, int64_t s, int64_t pad, int64_t k, int64_t out, int64_t& lo,
                                         int64_t& hi) {
  const int64_t first = i + pad - k + 1;  // smallest o*s allowed
  lo = first <= 0 ? 0 : (first + s - 1) / s;
  hi = (i + pad) / s;
  if (hi > out - 1) hi = out - 1;
}

// Calls go(T*{}, grid, stream) with the element type dt names, for n threads' worth of work.
template <typename Go>
void for_dtype(DType dt, const char* op, int64_t n, uintptr_t stream, Go&& go) {
  if (n == 0) return;
  const unsigned grid = grid_for(n, kThreads);
  const cudaStream_t s = as_stream(stream);
  switch (dt) {
    case DType::Float32: go(static_cast<float*>(nullptr), grid, s); break;
    case DType::Float64: go(static_cast<double*>(nullptr), grid, s); break;
    case DType::Float16: go(static_cast<__half*>(nullptr), grid, s); break;
    case DType::BFloat16: go(static_cast<__nv_bfloat16*>(nullptr), grid, s); break;
    default: throw std::invalid_argument(std::string(op) + ": unsupported dtype");
  }
}

}  // namespace dk::cuda::pool

#define DK_ELEM(tag) std::remove_pointer_t<decltype(tag)>
