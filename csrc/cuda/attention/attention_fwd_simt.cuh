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

// Shared memory of the forward: Q (BR rows), K and V (BC rows), P (BR rows), strides tile_ld / score_ld.
template <typename A, int BR, int BC, int DCH>
constexpr size_t simt_fwd_smem() {
  return sizeof(A) * (size_t(BR + 2 * BC) * tile_ld<A, DCH>() + size_t(BR) * score_ld<A, BC>());
}

// One body of ~110 lines, its steps marked (S = Q K^T, online softmax, O += P V, out and lse): split
// into inline steps it computes the same, but nvcc schedules it differently (SASS compared), which
// only a GPU measurement could clear.
template <typename T, int BR, int BC, int DCH>
__global__ void __launch_bounds__(kThreads, 1)
    attn_fwd_simt_kernel(AttentionParams p, const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                         const T* __restrict__ mask, const int64_t* __restrict__ moff, T* __restrict__ out,
                         typename Acc<T>::type* __restrict__ lse, typename Acc<T>::type scale) {
  using A = typename Acc<T>::type;
  constexpr int RI = BR / 16, CJ = BC / 16, LD = tile_ld<A, DCH>(), LP = score_ld<A, BC>();
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
    tile_dot<A, RI, CJ, LD>(s, Qs, Ks, D, tr, tc);

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

    // O += P V (keys past nc have P = 0 and zero V rows); float reads 4 P columns at a time
    constexpr int CS = sizeof(A) == 4 ? 4 : 1;
    for (int c0 = 0; c0 < nc; c0 += CS) {
      A pa[RI][CS];
#pragma unroll
      for (int a = 0; a < RI; ++a) {
        if constexpr (CS == 4) {
          const float4 v4 = *reinterpret_cast<const float4*>(Ps + (tr + 16 * a) * LP + c0);
          pa[a][0] = v4.x, pa[a][1] = v4.y, pa[a][2] = v4.z, pa[a][3] = v4.w;
        } else {
          pa[a][0] = Ps[(tr + 16 * a) * LP + c0];
        }
      }
#pragma unroll
      for (int cc = 0; cc < CS; ++cc)
#pragma unroll
        for (int j = 0; j < DCH; ++j) {
          const A vv = Vs[(c0 + cc) * LD + tc + 16 * j];
#pragma unroll
          for (int a = 0; a < RI; ++a) o[a][j] += pa[a][cc] * vv;
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
