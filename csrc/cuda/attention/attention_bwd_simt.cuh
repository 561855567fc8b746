#pragma once
// Exact (non-tensor-core) attention backward, FlashAttention-2 style, for float32/float64 and the
// float16 head dims without a tensor-core kernel. Drow_i = rowsum(dO_i * O_i) first (one pass);
// then one block per head x BC keys holds K_j, V_j and accumulates dK_j, dV_j in registers over
// the query tiles, recomputing P = exp(S - lse) per tile:
//   dV += P^T dO,  dP = dO V^T,  dS = P (dP - Drow) scale,  dK += dS^T Q,  dQ += dS K.
// dQ: by default each key block adds its dS K into dQ with atomics (float for float16 data, then
// converted); `deterministic` instead runs a separate pass, one block per query tile looping over
// the key tiles and recomputing dS, so dQ is summed in a fixed order with no atomics.
#include <stdexcept>
#include <type_traits>

#include "cuda/attention/attention_common.cuh"
#include "cuda/common/launch.h"

namespace dk::cuda::attn {

template <typename A, int BR, int BC, int DCH>
constexpr size_t simt_bwd_smem() {
  return sizeof(A) * (size_t(2 * BR + 2 * BC) * tile_ld<A, DCH>() + size_t(2 * BR) * score_ld<A, BC>() + 2 * BR);
}

template <typename A, int BR, int BC, int DCH>
struct BwdTiles {  // the shared-memory carve-up
  A *Qs, *dOs, *Ks, *Vs, *Ps, *dSs, *lse, *drow;
  __device__ explicit BwdTiles(A* s) {
    constexpr int LD = tile_ld<A, DCH>(), LP = score_ld<A, BC>();
    Qs = s;
    dOs = Qs + BR * LD;
    Ks = dOs + BR * LD;
    Vs = Ks + BC * LD;
    Ps = Vs + BC * LD;
    dSs = Ps + BR * LP;
    lse = dSs + BR * LP;
    drow = lse + BR;
  }
};

// Drow[row] = sum_e dout[row, e] * out[row, e], summed in the order (and with the multiply-add)
// the dP tile uses, so that where O_i is exactly V_j (one visible key) dP - Drow is exactly 0.
template <typename T>
__global__ void attn_drow_kernel(int64_t rows, int64_t Dv, const T* __restrict__ out, const T* __restrict__ dout,
                                 typename Acc<T>::type* __restrict__ drow) {
  using A = typename Acc<T>::type;
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < rows; r += int64_t(gridDim.x) * blockDim.x) {
    A s = A(0);
    for (int64_t e = 0; e < Dv; ++e) s += to_acc(dout[r * Dv + e]) * to_acc(out[r * Dv + e]);
    drow[r] = s;
  }
}

template <typename T>
__global__ void attn_convert_kernel(int64_t n, const float* __restrict__ src, T* __restrict__ dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_acc<T>(src[i]);
}

// The query tile [q0, q0 + BR) and its lse / Drow rows into shared memory.
template <typename T, int BR, int BC, int DCH>
__device__ __forceinline__ void load_query_tile(const AttentionParams& p,
                                                BwdTiles<typename Acc<T>::type, BR, BC, DCH>& t, const T* q,
                                                const T* dout, const typename Acc<T>::type* lse,
                                                const typename Acc<T>::type* drow, int64_t bh, int64_t q0) {
  using A = typename Acc<T>::type;
  const int nr = int(imin(BR, p.Lq - q0));
  load_tile(t.Qs, tile_ld<A, DCH>(), q + (bh * p.Lq + q0) * p.D, p.D, BR, nr, int(p.D), 16 * DCH);
  load_tile(t.dOs, tile_ld<A, DCH>(), dout + (bh * p.Lq + q0) * p.Dv, p.Dv, BR, nr, int(p.Dv), 16 * DCH);
  for (int r = threadIdx.x; r < BR; r += blockDim.x) {
    t.lse[r] = r < nr ? lse[bh * p.Lq + q0 + r] : A(0);
    t.drow[r] = r < nr ? drow[bh * p.Lq + q0 + r] : A(0);
  }
}

template <typename T, int BR, int BC, int DCH>
__device__ __forceinline__ void load_key_tile(const AttentionParams& p, BwdTiles<typename Acc<T>::type, BR, BC, DCH>& t,
                                              const T* k, const T* v, int64_t bh, int64_t k0) {
  const int nc = int(imin(BC, p.Lk - k0));
  load_tile(t.Ks, tile_ld<typename Acc<T>::type, DCH>(), k + (bh * p.Lk + k0) * p.D, p.D, BC, nc, int(p.D), 16 * DCH);
  load_tile(t.Vs, tile_ld<typename Acc<T>::type, DCH>(), v + (bh * p.Lk + k0) * p.Dv, p.Dv, BC, nc, int(p.Dv),
            16 * DCH);
}

// P and dS of the (query tile, key tile) pair into shared memory; zero where not visible.
// Thread (tr, tc) computes rows tr + 16a, keys tc + 16b.
template <typename T, int BR, int BC, int DCH>
__device__ __forceinline__ void probs_and_dscores(const AttentionParams& p,
                                                  BwdTiles<typename Acc<T>::type, BR, BC, DCH>& t, const T* mask,
                                                  int64_t mo, int64_t q0, int64_t k0, typename Acc<T>::type scale) {
  using A = typename Acc<T>::type;
  constexpr int RI = BR / 16, CJ = BC / 16, LD = tile_ld<A, DCH>(), LP = score_ld<A, BC>();
  const int tr = threadIdx.x >> 4, tc = threadIdx.x & 15;
  A s[RI][CJ], dp[RI][CJ];
#pragma unroll
  for (int a = 0; a < RI; ++a)
#pragma unroll
    for (int b = 0; b < CJ; ++b) s[a][b] = dp[a][b] = A(0);
  tile_dot<A, RI, CJ, LD>(s, t.Qs, t.Ks, int(p.D), tr, tc);
  tile_dot<A, RI, CJ, LD>(dp, t.dOs, t.Vs, int(p.Dv), tr, tc);
#pragma unroll
  for (int a = 0; a < RI; ++a) {
    const int r = tr + 16 * a;
    const int64_t i = q0 + r;
#pragma unroll
    for (int b = 0; b < CJ; ++b) {
      const int c = tc + 16 * b;
      const int64_t j = k0 + c;
      A pv = A(0), ds = A(0);
      if (visible(p, i, j)) {
        pv = acc_exp(masked_score(p, s[a][b], scale, mask, mo, i, j) - t.lse[r]);
        ds = pv * (dp[a][b] - t.drow[r]) * scale;
      }
      t.Ps[r * LP + c] = pv;
      t.dSs[r * LP + c] = ds;
    }
  }
}

template <typename A, int R, int C>
__device__ __forceinline__ void zero_regs(A (&g)[R][C]) {
#pragma unroll
  for (int a = 0; a < R; ++a)
#pragma unroll
    for (int j = 0; j < C; ++j) g[a][j] = A(0);
}

// gq[rows tr + 16a, columns tc + 16j] += dS K over the nc keys of the tile in shared memory.
template <typename A, int BR, int BC, int DCH>
__device__ __forceinline__ void add_ds_k(A (&gq)[BR / 16][DCH], const BwdTiles<A, BR, BC, DCH>& t, int nc, int tr,
                                         int tc) {
  constexpr int RI = BR / 16, LD = tile_ld<A, DCH>(), LP = score_ld<A, BC>();
  for (int c = 0; c < nc; ++c) {
    A sa[RI];
#pragma unroll
    for (int a = 0; a < RI; ++a) sa[a] = t.dSs[(tr + 16 * a) * LP + c];
#pragma unroll
    for (int j = 0; j < DCH; ++j) {
      const A kv = t.Ks[c * LD + tc + 16 * j];
#pragma unroll
      for (int a = 0; a < RI; ++a) gq[a][j] += sa[a] * kv;
    }
  }
}

// put(offset of dQ[bh, i, d], gq[a][j]) for every row i = q0 + tr + 16a < Lq and column d = tc + 16j < D.
template <typename A, int RI, int DCH, typename Put>
__device__ __forceinline__ void for_dq_elements(const AttentionParams& p, const A (&gq)[RI][DCH], int64_t bh,
                                                int64_t q0, int tr, int tc, Put put) {
  const int D = int(p.D);
#pragma unroll
  for (int a = 0; a < RI; ++a) {
    const int64_t i = q0 + tr + 16 * a;
    if (i >= p.Lq) continue;
#pragma unroll
    for (int j = 0; j < DCH; ++j) {
      const int d = tc + 16 * j;
      if (d < D) put((bh * p.Lq + i) * D + d, gq[a][j]);
    }
  }
}

template <typename T, int BR, int BC, int DCH>
__global__ void __launch_bounds__(kThreads, 1)
    attn_bwd_simt_kernel(AttentionParams p, const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                         const T* __restrict__ mask, const int64_t* __restrict__ moff, const T* __restrict__ dout,
                         const typename Acc<T>::type* __restrict__ lse, const typename Acc<T>::type* __restrict__ drow,
                         typename Acc<T>::type* __restrict__ dq_acc, T* __restrict__ dk, T* __restrict__ dv,
                         int dq_atomic, typename Acc<T>::type scale) {
  using A = typename Acc<T>::type;
  constexpr int RI = BR / 16, RK = BC / 16, LD = tile_ld<A, DCH>(), LP = score_ld<A, BC>();
  DK_DYNAMIC_SHARED(A, smem);
  BwdTiles<A, BR, BC, DCH> t(smem);
  const int tr = threadIdx.x >> 4, tc = threadIdx.x & 15;
  const int64_t nkb = (p.Lk + BC - 1) / BC;
  const int64_t bh = blockIdx.x / nkb, k0 = (blockIdx.x % nkb) * BC;
  const int64_t mo = p.has_mask ? moff[bh] : 0;
  const int D = int(p.D), Dv = int(p.Dv);
  const int nc = int(imin(BC, p.Lk - k0));

  load_key_tile<T, BR, BC, DCH>(p, t, k, v, bh, k0);
  A gk[RK][DCH], gv[RK][DCH];
  zero_regs(gk);
  zero_regs(gv);

  // causal: query rows below k0 see none of these keys, so their tiles are skipped
  for (int64_t q0 = p.causal ? (k0 / BR) * BR : 0; q0 < p.Lq; q0 += BR) {
    __syncthreads();  // the previous tile's Q, dO, P, dS are no longer read
    load_query_tile<T, BR, BC, DCH>(p, t, q, dout, lse, drow, bh, q0);
    __syncthreads();
    probs_and_dscores<T, BR, BC, DCH>(p, t, mask, mo, q0, k0, scale);
    __syncthreads();
    for (int r = 0; r < BR; ++r) {  // dV += P^T dO, dK += dS^T Q (keys tr + 16a, columns tc + 16j)
      A pc[RK], sc[RK];
#pragma unroll
      for (int a = 0; a < RK; ++a) {
        pc[a] = t.Ps[r * LP + tr + 16 * a];
        sc[a] = t.dSs[r * LP + tr + 16 * a];
      }
#pragma unroll
      for (int j = 0; j < DCH; ++j) {
        const A ov = t.dOs[r * LD + tc + 16 * j], qv = t.Qs[r * LD + tc + 16 * j];
#pragma unroll
        for (int a = 0; a < RK; ++a) {
          gv[a][j] += pc[a] * ov;
          gk[a][j] += sc[a] * qv;
        }
      }
    }
    if (dq_atomic) {  // this key tile's share of dQ = dS K, added with atomics
      A gq[RI][DCH];
      zero_regs(gq);
      add_ds_k(gq, t, nc, tr, tc);
      for_dq_elements(p, gq, bh, q0, tr, tc, [&](int64_t at, A g) { atomicAdd(dq_acc + at, g); });
    }
  }
#pragma unroll
  for (int a = 0; a < RK; ++a) {
    const int c = tr + 16 * a;
    if (c >= nc) continue;
    const int64_t j = k0 + c;
#pragma unroll
    for (int jj = 0; jj < DCH; ++jj) {
      const int d = tc + 16 * jj;
      if (d < D) dk[(bh * p.Lk + j) * D + d] = from_acc<T>(gk[a][jj]);
      if (d < Dv) dv[(bh * p.Lk + j) * Dv + d] = from_acc<T>(gv[a][jj]);
    }
  }
}

// The deterministic dQ pass: one block per head x BR query rows, key tiles in order (its prologue is
// the key kernel's with the roles of the tiles swapped).
template <typename T, int BR, int BC, int DCH>
__global__ void __launch_bounds__(kThreads, 1)
    attn_bwd_dq_simt_kernel(AttentionParams p, const T* __restrict__ q, const T* __restrict__ k,
                            const T* __restrict__ v, const T* __restrict__ mask, const int64_t* __restrict__ moff,
                            const T* __restrict__ dout, const typename Acc<T>::type* __restrict__ lse,
                            const typename Acc<T>::type* __restrict__ drow, T* __restrict__ dq,
                            typename Acc<T>::type scale) {
  using A = typename Acc<T>::type;
  constexpr int RI = BR / 16;
  DK_DYNAMIC_SHARED(A, smem);
  BwdTiles<A, BR, BC, DCH> t(smem);
  const int tr = threadIdx.x >> 4, tc = threadIdx.x & 15;
  const int64_t nqb = (p.Lq + BR - 1) / BR;
  const int64_t bh = blockIdx.x / nqb, q0 = (blockIdx.x % nqb) * BR;
  const int64_t mo = p.has_mask ? moff[bh] : 0;

  load_query_tile<T, BR, BC, DCH>(p, t, q, dout, lse, drow, bh, q0);
  A gq[RI][DCH];
  zero_regs(gq);
  const int64_t kend = p.causal ? imin(p.Lk, q0 + BR) : p.Lk;
  for (int64_t k0 = 0; k0 < kend; k0 += BC) {
    __syncthreads();
    load_key_tile<T, BR, BC, DCH>(p, t, k, v, bh, k0);
    __syncthreads();
    probs_and_dscores<T, BR, BC, DCH>(p, t, mask, mo, q0, k0, scale);
    __syncthreads();
    add_ds_k(gq, t, int(imin(BC, p.Lk - k0)), tr, tc);
  }
  for_dq_elements(p, gq, bh, q0, tr, tc, [&](int64_t at, A g) { dq[at] = from_acc<T>(g); });
}

// The deterministic dQ pass over every query tile (also run after the tensor-core dK/dV kernel).
template <typename T, int BR, int BC, int DCH>
void launch_dq_pass(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask, const int64_t* moff,
                    const T* dout, const typename Acc<T>::type* lse, const typename Acc<T>::type* drow, T* dq,
                    cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const size_t smem = simt_bwd_smem<A, BR, BC, DCH>();
  auto dq_kernel = attn_bwd_dq_simt_kernel<T, BR, BC, DCH>;
  set_max_dynamic_shared(dq_kernel, smem);
  const int64_t qblocks = p.BH * ((p.Lq + BR - 1) / BR);
  if (qblocks > 0)
    launch(dq_kernel, dim3(unsigned(qblocks)), dim3(kThreads), smem, stream, p, q, k, v, mask, moff, dout, lse, drow,
           dq, static_cast<A>(p.scale));
}

// dQ in the data type from the float atomics' sum (n elements).
template <typename T>
void launch_dq_convert(int64_t n, const float* dq_acc, T* dq, cudaStream_t stream) {
  if (n > 0) launch(attn_convert_kernel<T>, dim3(grid_for(n, kThreads)), dim3(kThreads), 0, stream, n, dq_acc, dq);
}

// Drow, then dK/dV (and dQ by atomics unless deterministic), then the dQ pass or the conversion.
template <typename T, int BR, int BC, int DCH>
void launch_bwd_simt(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask, const int64_t* moff,
                     const T* out, const typename Acc<T>::type* lse, const T* dout, T* dq, T* dk, T* dv,
                     typename Acc<T>::type* drow, float* dq_acc, bool deterministic, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const int64_t rows = p.BH * p.Lq;
  launch(attn_drow_kernel<T>, dim3(grid_for(rows, kThreads)), dim3(kThreads), 0, stream, rows, p.Dv, out, dout, drow);
  A* acc = nullptr;  // where the atomics add dQ
  if (!deterministic) {
    if constexpr (std::is_same<A, T>::value) {
      acc = reinterpret_cast<A*>(dq);
    } else {
      static_assert(std::is_same<A, float>::value, "non-float accumulators are the data type");
      acc = dq_acc;
    }
    if (cudaMemsetAsync(acc, 0, sizeof(A) * size_t(rows * p.D), stream) != cudaSuccess)
      throw std::runtime_error("deepkern attention_backward: cudaMemsetAsync failed");
  }
  const size_t smem = simt_bwd_smem<A, BR, BC, DCH>();
  auto kernel = attn_bwd_simt_kernel<T, BR, BC, DCH>;
  set_max_dynamic_shared(kernel, smem);
  const int64_t kblocks = p.BH * ((p.Lk + BC - 1) / BC);
  if (kblocks > 0)
    launch(kernel, dim3(unsigned(kblocks)), dim3(kThreads), smem, stream, p, q, k, v, mask, moff, dout, lse,
           static_cast<const A*>(drow), acc, dk, dv, int(!deterministic), static_cast<A>(p.scale));
  if (deterministic) launch_dq_pass<T, BR, BC, DCH>(p, q, k, v, mask, moff, dout, lse, drow, dq, stream);
  if constexpr (!std::is_same<A, T>::value) {
    if (!deterministic) launch_dq_convert<T>(rows * p.D, dq_acc, dq, stream);
  }
}

}  // namespace dk::cuda::attn
