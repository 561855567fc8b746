#pragma once
// Device helpers shared by the attention kernels: accumulator math, the score of one (query, key)
// pair after scale, mask and causality, and the 16 x 16 thread grid the SIMT kernels use.
#include <cstdint>

#include "common/attention_params.h"
#include "cuda/common/device.cuh"
#include "cuda/common/numeric.cuh"

namespace dk::cuda::attn {

constexpr int kThreads = 256;  // SIMT kernels: a 16 x 16 grid of threads (tr = tid / 16, tc = tid % 16)

__device__ __forceinline__ float acc_exp(float x) { return expf(x); }
__device__ __forceinline__ double acc_exp(double x) { return exp(x); }
__device__ __forceinline__ float acc_log(float x) { return logf(x); }
__device__ __forceinline__ double acc_log(double x) { return log(x); }

__device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

template <typename A>
__device__ __forceinline__ A ninf() {
  return -static_cast<A>(INFINITY);
}

// Max / sum over the 16 lanes of a half warp (lanes differing in their low 4 bits); all 32 lanes call.
template <typename A>
__device__ __forceinline__ A half_warp_max(A x) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) {
    const A y = __shfl_xor_sync(0xffffffffu, x, o);
    x = y > x ? y : x;
  }
  return x;
}
template <typename A>
__device__ __forceinline__ A half_warp_sum(A x) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// Whether query i may see key j (both in range, and j <= i when causal: PyTorch's top-left alignment).
__device__ __forceinline__ bool visible(const AttentionParams& p, int64_t i, int64_t j) {
  return i < p.Lq && j < p.Lk && !(p.causal && j > i);
}

// s * scale + mask(i, j) for a visible pair.
template <typename T, typename A>
__device__ __forceinline__ A masked_score(const AttentionParams& p, A s, A scale, const T* mask, int64_t moff_b,
                                          int64_t i, int64_t j) {
  A x = s * scale;
  if (p.has_mask) x += to_acc(mask[moff_b + i * p.m_rs + j * p.m_cs]);
  return x;
}

// rows x cols of a row-major global matrix (row stride ld_g elements) into shared memory as the
// accumulator type with row stride ld_s; rows >= valid_rows and columns >= cols up to ld_s - 1
// are zero, so padded tiles multiply as zeros.
template <typename T, typename A>
__device__ __forceinline__ void load_tile(A* dst, int ld_s, const T* src, int64_t ld_g, int rows, int valid_rows,
                                          int cols, int pad_cols) {
  const int n = rows * pad_cols;
  for (int idx = threadIdx.x; idx < n; idx += blockDim.x) {
    const int r = idx / pad_cols, c = idx - r * pad_cols;
    dst[r * ld_s + c] = (r < valid_rows && c < cols) ? to_acc(src[r * ld_g + c]) : A(0);
  }
}

}  // namespace dk::cuda::attn
