#pragma once
// float16 attention backward on tensor cores, FlashAttention-2 style, for D = Dv = HD (64 or 128).
// One block = 4 warps = 64 keys of one head (16 per warp), K and V held in shared memory; query
// tiles of 32 rows (Q, dO) stream through shared memory double-buffered with cp.async. Per tile,
// each warp computes on its 16 keys with mma.sync m16n8k16 (float32 accumulation):
//   S^T = K Q^T, dP^T = V dO^T (16 x 32), P^T = exp(S^T scale + mask - lse), dS^T = P^T (dP^T - Drow) scale,
//   dV += P^T dO, dK += dS^T Q   (P^T and dS^T packed to half straight from the accumulators),
// then dS^T goes to shared memory and the 4 warps split dQ (32 x HD) += dS K, added with float
// atomics into a float32 workspace (converted to half afterwards). The deterministic mode skips
// the atomics here; the exact SIMT dQ pass computes dQ instead.
#include "cuda/attention/attention_common.cuh"
#include "cuda/attention/attention_fwd_mma.cuh"
#include "cuda/common/cp_async.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/mma.cuh"

namespace dk::cuda::attn {

constexpr int kBwdQRows = 32;  // query rows per streamed tile
constexpr int kBwdDsLd = kBwdQRows + 8;

template <int HD>
constexpr size_t mma_bwd_smem() {
  return sizeof(__half) * (size_t(2 * kMmaKeys + 4 * kBwdQRows) * (HD + 8) + size_t(kMmaKeys) * kBwdDsLd);
}

// One body of ~170 lines, its phases marked: the dK and dV accumulators and the S^T / dP^T
// fragments live in registers across the whole query loop, and splitting it could move nvcc's
// register allocation (the static check pins registers and spills), which only a GPU can measure.
template <int HD>
__global__ void __launch_bounds__(kMmaWarps * 32)
    attn_bwd_mma_kernel(AttentionParams p, const __half* __restrict__ q, const __half* __restrict__ k,
                        const __half* __restrict__ v, const __half* __restrict__ mask, const int64_t* __restrict__ moff,
                        const __half* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ drow,
                        float* __restrict__ dq_acc, __half* __restrict__ dk, __half* __restrict__ dv, int dq_atomic,
                        float scale) {
  constexpr int LDS = HD + 8, KS = HD / 16, QN = kBwdQRows / 8, ON = HD / 8;
  DK_DYNAMIC_SHARED(__half, smem);
  __half* Ks = smem;
  __half* Vs = Ks + kMmaKeys * LDS;
  __half* Qs = Vs + kMmaKeys * LDS;         // two buffers
  __half* dOs = Qs + 2 * kBwdQRows * LDS;   // two buffers
  __half* dSt = dOs + 2 * kBwdQRows * LDS;  // dS^T of the current tile, [key][query]

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int mi = lane >> 3, mr = lane & 7;
  const int64_t nkb = (p.Lk + kMmaKeys - 1) / kMmaKeys;
  const int64_t bh = blockIdx.x / nkb, k0 = (blockIdx.x % nkb) * kMmaKeys;
  const int64_t mo = p.has_mask ? moff[bh] : 0;
  const __half* qb = q + bh * p.Lq * HD;
  const __half* ob = dout + bh * p.Lq * HD;
  const int64_t qstart = p.causal ? (k0 / kBwdQRows) * kBwdQRows : 0;  // earlier rows see none of these keys
  const int ntiles = p.Lq > qstart ? int((p.Lq - qstart + kBwdQRows - 1) / kBwdQRows) : 0;

  cp_tile<HD, kMmaKeys>(Ks, k + (bh * p.Lk + k0) * HD, int(imin(kMmaKeys, p.Lk - k0)));
  cp_tile<HD, kMmaKeys>(Vs, v + (bh * p.Lk + k0) * HD, int(imin(kMmaKeys, p.Lk - k0)));
  if (ntiles > 0) {
    cp_tile<HD, kBwdQRows>(Qs, qb + qstart * HD, int(imin(kBwdQRows, p.Lq - qstart)));
    cp_tile<HD, kBwdQRows>(dOs, ob + qstart * HD, int(imin(kBwdQRows, p.Lq - qstart)));
  }
  cp_async_commit();

  float gk[ON][4], gv[ON][4];
#pragma unroll
  for (int n = 0; n < ON; ++n)
#pragma unroll
    for (int r = 0; r < 4; ++r) gk[n][r] = gv[n][r] = 0.0f;
  const int64_t key0 = k0 + warp * 16 + g;  // this lane's keys: key0 and key0 + 8
  const float log2e = 1.4426950408889634f, scale_log2 = scale * log2e;

  for (int tile = 0; tile < ntiles; ++tile) {
    const int64_t q0 = qstart + int64_t(tile) * kBwdQRows;
    cp_async_wait<0>();
    __syncthreads();  // this tile landed; every warp is done with the previous tile and dS^T
    if (tile + 1 < ntiles) {
      const int64_t q1 = q0 + kBwdQRows;
      const int nb = (tile + 1) & 1;
      cp_tile<HD, kBwdQRows>(Qs + nb * kBwdQRows * LDS, qb + q1 * HD, int(imin(kBwdQRows, p.Lq - q1)));
      cp_tile<HD, kBwdQRows>(dOs + nb * kBwdQRows * LDS, ob + q1 * HD, int(imin(kBwdQRows, p.Lq - q1)));
    }
    cp_async_commit();
    const __half* Qt = Qs + (tile & 1) * kBwdQRows * LDS;
    const __half* Ot = dOs + (tile & 1) * kBwdQRows * LDS;

    float s[QN][4], dp[QN][4];
#pragma unroll
    for (int n = 0; n < QN; ++n)
#pragma unroll
      for (int r = 0; r < 4; ++r) s[n][r] = dp[n][r] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KS; ++kk) {
      uint32_t ak[4], av[4];
      ldmatrix_x4(ak, Ks + (warp * 16 + (mi & 1) * 8 + mr) * LDS + kk * 16 + (mi >> 1) * 8);
      ldmatrix_x4(av, Vs + (warp * 16 + (mi & 1) * 8 + mr) * LDS + kk * 16 + (mi >> 1) * 8);
#pragma unroll
      for (int n = 0; n < QN; n += 2) {
        uint32_t bq[4], bo[4];
        ldmatrix_x4(bq, Qt + ((n + (mi >> 1)) * 8 + mr) * LDS + kk * 16 + (mi & 1) * 8);
        ldmatrix_x4(bo, Ot + ((n + (mi >> 1)) * 8 + mr) * LDS + kk * 16 + (mi & 1) * 8);
        mma_m16n8k16_f16(s[n], ak, bq, s[n]);
        mma_m16n8k16_f16(s[n + 1], ak, bq + 2, s[n + 1]);
        mma_m16n8k16_f16(dp[n], av, bo, dp[n]);
        mma_m16n8k16_f16(dp[n + 1], av, bo + 2, dp[n + 1]);
      }
    }
    // P^T and dS^T in place of S^T and dP^T (row = key, column = query)
#pragma unroll
    for (int n = 0; n < QN; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int64_t i = q0 + n * 8 + 2 * t + c;
        const bool in = i < p.Lq;
        const float li = in ? lse[bh * p.Lq + i] * log2e : 0.0f, di = in ? drow[bh * p.Lq + i] : 0.0f;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = 2 * h + c;
          const int64_t j = key0 + 8 * h;
          float pv = 0.0f, ds = 0.0f;
          if (visible(p, i, j)) {
            float x = s[n][r] * scale_log2;  // log2 units, as li
            if (p.has_mask) x += __half2float(mask[mo + i * p.m_rs + j * p.m_cs]) * log2e;
            pv = exp2f(x - li);
            ds = pv * (dp[n][r] - di) * scale;
          }
          s[n][r] = pv;
          dp[n][r] = ds;
        }
      }
    // dV += P^T dO, dK += dS^T Q (A operands straight from the accumulators)
#pragma unroll
    for (int kk = 0; kk < QN / 2; ++kk) {
      const uint32_t ap[4] = {pack_half2(s[2 * kk][0], s[2 * kk][1]), pack_half2(s[2 * kk][2], s[2 * kk][3]),
                              pack_half2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack_half2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
      const uint32_t as[4] = {pack_half2(dp[2 * kk][0], dp[2 * kk][1]), pack_half2(dp[2 * kk][2], dp[2 * kk][3]),
                              pack_half2(dp[2 * kk + 1][0], dp[2 * kk + 1][1]),
                              pack_half2(dp[2 * kk + 1][2], dp[2 * kk + 1][3])};
#pragma unroll
      for (int n = 0; n < ON; n += 2) {
        uint32_t bo[4], bq[4];
        ldmatrix_x4_trans(bo, Ot + (kk * 16 + (mi & 1) * 8 + mr) * LDS + (n + (mi >> 1)) * 8);
        ldmatrix_x4_trans(bq, Qt + (kk * 16 + (mi & 1) * 8 + mr) * LDS + (n + (mi >> 1)) * 8);
        mma_m16n8k16_f16(gv[n], ap, bo, gv[n]);
        mma_m16n8k16_f16(gv[n + 1], ap, bo + 2, gv[n + 1]);
        mma_m16n8k16_f16(gk[n], as, bq, gk[n]);
        mma_m16n8k16_f16(gk[n + 1], as, bq + 2, gk[n + 1]);
      }
    }
    if (!dq_atomic) continue;
    // dS^T to shared memory, then dQ (32 x HD) += dS K split over the warps: rows (warp & 1) * 16,
    // columns (warp >> 1) * HD / 2
#pragma unroll
    for (int n = 0; n < QN; ++n)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const __half2 val = __floats2half2_rn(dp[n][2 * h], dp[n][2 * h + 1]);
        *reinterpret_cast<__half2*>(dSt + (warp * 16 + g + 8 * h) * kBwdDsLd + n * 8 + 2 * t) = val;
      }
    __syncthreads();
    constexpr int HN = ON / 2;  // n-tiles of this warp's dQ columns
    const int qr = (warp & 1) * 16, dc = (warp >> 1) * (HD / 2);
    float gq[HN][4];
#pragma unroll
    for (int n = 0; n < HN; ++n) gq[n][0] = gq[n][1] = gq[n][2] = gq[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kMmaKeys / 16; ++kk) {
      uint32_t a[4];
      ldmatrix_x4_trans(a, dSt + (kk * 16 + (mi >> 1) * 8 + mr) * kBwdDsLd + qr + (mi & 1) * 8);
#pragma unroll
      for (int n = 0; n < HN; n += 2) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, Ks + (kk * 16 + (mi & 1) * 8 + mr) * LDS + dc + (n + (mi >> 1)) * 8);
        mma_m16n8k16_f16(gq[n], a, b, gq[n]);
        mma_m16n8k16_f16(gq[n + 1], a, b + 2, gq[n + 1]);
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t i = q0 + qr + g + 8 * h;
      if (i >= p.Lq) continue;
      float* dst = dq_acc + (bh * p.Lq + i) * HD + dc + 2 * t;
#pragma unroll
      for (int n = 0; n < HN; ++n) {
        atomicAdd(dst + n * 8, gq[n][2 * h]);
        atomicAdd(dst + n * 8 + 1, gq[n][2 * h + 1]);
      }
    }
  }
  cp_async_wait<0>();

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t j = key0 + 8 * h;
    if (j >= p.Lk) continue;
#pragma unroll
    for (int n = 0; n < ON; ++n) {
      const __half2 kv = __floats2half2_rn(gk[n][2 * h], gk[n][2 * h + 1]);
      const __half2 vv = __floats2half2_rn(gv[n][2 * h], gv[n][2 * h + 1]);
      *reinterpret_cast<__half2*>(dk + (bh * p.Lk + j) * HD + n * 8 + 2 * t) = kv;
      *reinterpret_cast<__half2*>(dv + (bh * p.Lk + j) * HD + n * 8 + 2 * t) = vv;
    }
  }
}

template <int HD>
void launch_bwd_mma(const AttentionParams& p, const __half* q, const __half* k, const __half* v, const __half* mask,
                    const int64_t* moff, const __half* dout, const float* lse, const float* drow, float* dq_acc,
                    __half* dk, __half* dv, bool dq_atomic, cudaStream_t stream) {
  const size_t smem = mma_bwd_smem<HD>();
  auto kernel = attn_bwd_mma_kernel<HD>;
  set_max_dynamic_shared(kernel, smem);
  const int64_t blocks = p.BH * ((p.Lk + kMmaKeys - 1) / kMmaKeys);
  if (blocks > 0)
    launch(kernel, dim3(unsigned(blocks)), dim3(kMmaWarps * 32), smem, stream, p, q, k, v, mask, moff, dout, lse, drow,
           dq_acc, dk, dv, int(dq_atomic), static_cast<float>(p.scale));
}

}  // namespace dk::cuda::attn
