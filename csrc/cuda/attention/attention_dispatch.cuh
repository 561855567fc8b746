#pragma once
// Kernel choice per element type and head dims: float16 with D = Dv = 64 or 128 runs the
// tensor-core kernels; everything else the exact SIMT kernels.
//   SIMT tiles (BR query rows, BC keys, 16*DCH >= max(D, Dv) columns) by accumulator width:
//   float accumulators keep BR = BC = 64 up to 128 columns; double and the widest heads use
//   smaller tiles so that the shared memory stays under 227 KiB (sm_90) per block.
#include <stdexcept>
#include <string>

#include "cuda/attention/attention.h"
#include "cuda/attention/attention_bwd_mma.cuh"
#include "cuda/attention/attention_bwd_simt.cuh"
#include "cuda/attention/attention_fwd_mma.cuh"
#include "cuda/attention/attention_fwd_simt.cuh"

namespace dk::cuda {

namespace attn {

// 0, 1, 2: the widest head dim max(D, Dv) is <= 64, <= 128, <= 256.
inline int width_class(const AttentionParams& p) {
  const int64_t w = p.D > p.Dv ? p.D : p.Dv;
  if (w > 256) throw std::invalid_argument("attention (CUDA): head dims above 256 are not supported");
  return w <= 64 ? 0 : w <= 128 ? 1 : 2;
}

// The tile configuration per (accumulator size, width class): BR, BC, DCH for the forward;
// the backward uses BR = 32 where the forward has 64 (it holds Q, dO, K, V and two score tiles).
#define DK_ATTN_TILES(CASE)                 \
  if constexpr (sizeof(A) == 4) {           \
    switch (width_class(p)) {               \
      case 0: CASE(64, 32, 64, 4); break;   \
      case 1: CASE(64, 32, 64, 8); break;   \
      default: CASE(32, 32, 32, 16); break; \
    }                                       \
  } else {                                  \
    switch (width_class(p)) {               \
      case 0: CASE(64, 32, 64, 4); break;   \
      case 1: CASE(32, 32, 32, 8); break;   \
      default: CASE(16, 16, 16, 16); break; \
    }                                       \
  }

template <typename T>
void forward_typed(const AttentionParams& p, const void* q, const void* k, const void* v, const void* mask,
                   const int64_t* moff, void* out, void* lse, cudaStream_t s) {
  using A = typename Acc<T>::type;
#define DK_CASE(BRF, BRB, BC, DCH)                                                                                  \
  launch_fwd_simt<T, BRF, BC, DCH>(p, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), \
                                   static_cast<const T*>(mask), moff, static_cast<T*>(out), static_cast<A*>(lse), s)
  DK_ATTN_TILES(DK_CASE)
#undef DK_CASE
}

template <typename T>
void backward_typed(const AttentionParams& p, const void* q, const void* k, const void* v, const void* mask,
                    const int64_t* moff, const void* out, const void* lse, const void* dout, void* dq, void* dk,
                    void* dv, void* drow, void* dq_acc, bool deterministic, cudaStream_t s) {
  using A = typename Acc<T>::type;
#define DK_CASE(BRF, BRB, BC, DCH)                                                                                    \
  launch_bwd_simt<T, BRB, BC, DCH>(                                                                                   \
      p, static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v), static_cast<const T*>(mask),   \
      moff, static_cast<const T*>(out), static_cast<const A*>(lse), static_cast<const T*>(dout), static_cast<T*>(dq), \
      static_cast<T*>(dk), static_cast<T*>(dv), static_cast<A*>(drow), static_cast<float*>(dq_acc), deterministic, s)
  DK_ATTN_TILES(DK_CASE)
#undef DK_CASE
}

#undef DK_ATTN_TILES

// float16, D = Dv = HD: Drow, then dK/dV (and dQ by atomics) on tensor cores; dQ converted from
// the float32 workspace, or (deterministic) computed by the exact SIMT dQ pass.
template <int HD>
void backward_mma(const AttentionParams& p, const __half* q, const __half* k, const __half* v, const __half* mask,
                  const int64_t* moff, const __half* out, const float* lse, const __half* dout, __half* dq, __half* dk,
                  __half* dv, float* drow, float* dq_acc, bool deterministic, cudaStream_t s) {
  const int64_t rows = p.BH * p.Lq, n = rows * HD;
  launch(attn_drow_kernel<__half>, dim3(grid_for(rows, kThreads)), dim3(kThreads), 0, s, rows, p.Dv, out, dout, drow);
  if (!deterministic && cudaMemsetAsync(dq_acc, 0, sizeof(float) * size_t(n), s) != cudaSuccess)
    throw std::runtime_error("deepkern attention_backward: cudaMemsetAsync failed");
  launch_bwd_mma<HD>(p, q, k, v, mask, moff, dout, lse, drow, dq_acc, dk, dv, !deterministic, s);
  if (deterministic)
    launch_dq_pass<__half, 32, 64, HD / 16>(p, q, k, v, mask, moff, dout, lse, drow, dq, s);
  else
    launch_dq_convert<__half>(n, dq_acc, dq, s);
}

// float64 instances are compiled in attention_f64.cu, the one attention translation unit where
// ptxas may report double-precision use.
extern template void forward_typed<double>(const AttentionParams&, const void*, const void*, const void*, const void*,
                                           const int64_t*, void*, void*, cudaStream_t);
extern template void backward_typed<double>(const AttentionParams&, const void*, const void*, const void*, const void*,
                                            const int64_t*, const void*, const void*, const void*, void*, void*, void*,
                                            void*, void*, bool, cudaStream_t);

}  // namespace attn
}  // namespace dk::cuda
