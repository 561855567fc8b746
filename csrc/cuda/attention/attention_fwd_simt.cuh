#pragma once
// Exact (non-tensor-core) attention forward for float32/float64, and float16 head dims without a
// tensor-core kernel. One block = one head x BR query rows; K/V tiles of BC keys stream through
// shared memory; online softmax (running max m, sum l) in registers; out = O / l, lse = m + log l.
// Thread (tr, tc) of the 16 x 16 grid owns query rows tr + 16a and, of each tile, keys tc + 16b
// and output columns tc + 16j: the rows of S and of O it owns are the same, so the softmax's
// rescale of O needs no exchange; a row's max and sum are half-warp shuffles.
#include "cuda/attention/attention_common.cuh"
#include "cuda/common/launch.h"

namespace dk::cuda::attn {

// Shared memory of the forward: Q (BR rows), K and V (BC rows) with row stride 16*DCH + 1
// (odd: the 16 lanes reading 16 different K rows hit 16 banks), P (BR x BC+1).
template <typename A, int BR, int BC, int DCH>
constexpr size_t simt_fwd_smem() {
  return sizeof(A) * (size_t(BR + 2 * BC) * (16 * DCH + 1) + size_t(BR) * (BC + 1));
}

template <typename T, int BR, int BC, int DCH>
__global__ void __launch_bounds__(kThreads) attn_fwd_simt_kernel(AttentionParams p, const T* __restrict__ q,
                                                                 const T* __restrict__ k, const T* __restrict__ v,
                                                                 const T* __restrict__ mask,
                                                                 const int64_t* __restrict__ moff, T* __restrict__ out,
                                                                 typename Acc<T>::type* __restrict__ lse,
                                                                 typename Acc<T>::type scale) {
  using A = typename Acc<T>::type;
  constexpr int RI = BR / 16, CJ = BC / 16, LD = 16 * DCH + 1, LP = BC + 1;
  DK_DYNAMIC_SHARED(A, smem);
  A* Qs = smem;
  A* Ks = Qs + BR * LD;
  A* Vs = Ks + BC * LD;
  A* Ps = Vs + BC * LD;

  const int tid = threadIdx.x, tr = tid >> 4, tc = tid & 15;
  const int64_t nqb = (p.Lq + BR - 1) / BR;
  const int64_t bh = blockIdx.x / nqb;
  int64_t qb = blockIdx.x % nqb;
  if (p.causal) qb = nqb - 1 - qb;  // the longest rows start first
  const int64_t q0 = qb * BR;
  const int D = int(p.D), Dv = int(p.Dv);
  const int64_t mo = p.has_mask ? moff[bh] : 0;

  load_tile(Qs, LD, q + (bh * p.Lq + q0) * D, D, BR, int(imin(BR, p.Lq - q0)), D, 16 * DCH);

  A m[RI], l[RI], o[RI][DCH];
#pragma unroll
  for (int a = 0; a < RI; ++a) {
    m[a] = ninf<A>();
    l[a] = A(0);
#pragma unroll
    for (int j = 0; j < DCH; ++j) o[a][j] = A(0);
  }

  const int64_t kend = p.causal ? imin(p.Lk, q0 + BR) : p.Lk;  // later key tiles are fully masked
  for (int64_t k0 = 0; k0 < kend; k0 += BC) {
    const int nc = int(imin(BC, p.Lk - k0));
    __syncthreads();  // the previous tile's K, V and P are no longer read
    load_tile(Ks, LD, k + (bh * p.Lk + k0) * D, D, BC, nc, D, 16 * DCH);
    load_tile(Vs, LD, v + (bh * p.Lk + k0) * Dv, Dv, BC, nc, Dv, 16 * DCH);
    __syncthreads();

    A s[RI][CJ];
#pragma unroll
    for (int a = 0; a < RI; ++a)
#pragma unroll
      for (int b = 0; b < CJ; ++b) s[a][b] = A(0);
    for (int d = 0; d < D; ++d) {
      A qa[RI], kb[CJ];
#pragma unroll
      for (int a = 0; a < RI; ++a) qa[a] = Qs[(tr + 16 * a) * LD + d];
#pragma unroll
      for (int b = 0; b < CJ; ++b) kb[b] = Ks[(tc + 16 * b) * LD + d];
#pragma unroll
      for (int a = 0; a < RI; ++a)
#pragma unroll
        for (int b = 0; b < CJ; ++b) s[a][b] += qa[a] * kb[b];
    }

#pragma unroll
    for (int a = 0; a < RI; ++a) {
      const int64_t i = q0 + tr + 16 * a;
      A mx = ninf<A>();
#pragma unroll
      for (int b = 0; b < CJ; ++b) {
        const int64_t j = k0 + tc + 16 * b;
        s[a][b] = visible(p, i, j) ? masked_score(p, s[a][b], scale, mask, mo, i, j) : ninf<A>();
        mx = s[a][b] > mx ? s[a][b] : mx;
      }
      mx = half_warp_max(mx);
      const A mn = mx > m[a] ? mx : m[a];
      const A ms = mn == ninf<A>() ? A(0) : mn;  // nothing seen yet: exp(-inf - 0) = 0
      const A alpha = acc_exp(m[a] - ms);
      A rs = A(0);
#pragma unroll
      for (int b = 0; b < CJ; ++b) {
        const A e = acc_exp(s[a][b] - ms);
        rs += e;
        Ps[(tr + 16 * a) * LP + tc + 16 * b] = e;
      }
      rs = half_warp_sum(rs);
      l[a] = l[a] * alpha + rs;
      m[a] = mn;
#pragma unroll
      for (int j = 0; j < DCH; ++j) o[a][j] *= alpha;
    }
    __syncthreads();

    for (int c = 0; c < nc; ++c) {  // O += P V (keys past nc have P = 0 and zero V rows)
      A pa[RI];
#pragma unroll
      for (int a = 0; a < RI; ++a) pa[a] = Ps[(tr + 16 * a) * LP + c];
#pragma unroll
      for (int j = 0; j < DCH; ++j) {
        const A vv = Vs[c * LD + tc + 16 * j];
#pragma unroll
        for (int a = 0; a < RI; ++a) o[a][j] += pa[a] * vv;
      }
    }
  }

#pragma unroll
  for (int a = 0; a < RI; ++a) {
    const int64_t i = q0 + tr + 16 * a;
    if (i >= p.Lq) continue;
    const bool empty = l[a] == A(0);  // nothing to attend to (a NaN l is not empty: NaN propagates)
    const A inv = empty ? A(0) : A(1) / l[a];
    T* orow = out + (bh * p.Lq + i) * Dv;
#pragma unroll
    for (int j = 0; j < DCH; ++j) {
      const int e = tc + 16 * j;
      if (e < Dv) orow[e] = from_acc<T>(empty ? A(0) : o[a][j] * inv);
    }
    if (tc == 0) lse[bh * p.Lq + i] = empty ? -ninf<A>() : m[a] + acc_log(l[a]);
  }
}

template <typename T, int BR, int BC, int DCH>
void launch_fwd_simt(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask, const int64_t* moff,
                     T* out, typename Acc<T>::type* lse, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const size_t smem = simt_fwd_smem<A, BR, BC, DCH>();
  auto kernel = attn_fwd_simt_kernel<T, BR, BC, DCH>;
  set_max_dynamic_shared(kernel, smem);
  const int64_t blocks = p.BH * ((p.Lq + BR - 1) / BR);
  launch(kernel, dim3(unsigned(blocks)), dim3(kThreads), smem, stream, p, q, k, v, mask, moff, out, lse,
         static_cast<A>(p.scale));
}

}  // namespace dk::cuda::attn
