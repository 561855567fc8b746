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

// Row strides in shared memory (elements): tiles hold 16*DCH columns plus padding that keeps the
// rows 16-byte aligned for float4 reads and the 8 rows of a float4 phase in distinct bank groups
// (float: +4); double reads scalars and pads to an odd stride (+1).
template <typename A, int DCH>
constexpr int tile_ld() {
  return 16 * DCH + (sizeof(A) == 4 ? 4 : 1);
}
template <typename A, int BC>
constexpr int score_ld() {
  return BC + (sizeof(A) == 4 ? 4 : 1);
}

// s[a][b] += sum over d < n of X[(tr + 16a) * LD + d] * Y[(tc + 16b) * LD + d], in order of d.
// float: 4 columns per shared read (n rounds up to 4; the tiles' padding columns are zero).
template <typename A, int RI, int CJ, int LD>
__device__ __forceinline__ void tile_dot(A (&s)[RI][CJ], const A* X, const A* Y, int n, int tr, int tc) {
  if constexpr (sizeof(A) == 4) {
    for (int d = 0; d < n; d += 4) {
      float4 x[RI], y[CJ];
#pragma unroll
      for (int a = 0; a < RI; ++a) x[a] = *reinterpret_cast<const float4*>(X + (tr + 16 * a) * LD + d);
#pragma unroll
      for (int b = 0; b < CJ; ++b) y[b] = *reinterpret_cast<const float4*>(Y + (tc + 16 * b) * LD + d);
#pragma unroll
      for (int a = 0; a < RI; ++a)
#pragma unroll
        for (int b = 0; b < CJ; ++b) {
          s[a][b] += x[a].x * y[b].x;
          s[a][b] += x[a].y * y[b].y;
          s[a][b] += x[a].z * y[b].z;
          s[a][b] += x[a].w * y[b].w;
        }
    }
  } else {
    for (int d = 0; d < n; ++d) {
      A x[RI], y[CJ];
#pragma unroll
      for (int a = 0; a < RI; ++a) x[a] = X[(tr + 16 * a) * LD + d];
#pragma unroll
      for (int b = 0; b < CJ; ++b) y[b] = Y[(tc + 16 * b) * LD + d];
#pragma unroll
      for (int a = 0; a < RI; ++a)
#pragma unroll
        for (int b = 0; b < CJ; ++b) s[a][b] += x[a] * y[b];
    }
  }
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
