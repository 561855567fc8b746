#pragma once
// float16 attention forward on tensor cores, FlashAttention-2 style, for D = Dv = HD (64 or 128).
// One block = 4 warps = 64 query rows of one head; each warp owns 16 rows, keeps their Q
// fragments in registers, and computes S = Q K^T (16 x 64 per key tile) and O += P V with
// mma.sync m16n8k16 (float32 accumulation). K/V tiles of 64 keys are double-buffered in shared
// memory with cp.async (tile j+1 loads while tile j computes). The online softmax runs on the
// accumulator fragments in registers: a lane holds rows g and g+8 (g = lane/4), so a row's max
// is a shuffle over the 4 lanes of a quad; the row sum stays per-lane until the end. P is packed
// to half in registers and used directly as the A operand of P V (the C and A fragment layouts
// agree), so no Lq x Lk matrix exists anywhere. Rows are padded by 8 halves (16 bytes), which
// makes the 8 row addresses of each ldmatrix fall in distinct bank groups.
#include <cstring>

#include "cuda/attention/attention_common.cuh"
#include "cuda/common/cp_async.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/mma.cuh"

namespace dk::cuda::attn {

constexpr int kMmaWarps = 4, kMmaRows = 16 * kMmaWarps, kMmaKeys = 64;

template <int HD>
constexpr size_t mma_fwd_smem() {
  return sizeof(__half) * size_t(kMmaRows + 4 * kMmaKeys) * (HD + 8);
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  uint32_t r;
  memcpy(&r, &h, sizeof(r));
  return r;
}

// rows x HD halves from global (row stride HD) into shared (row stride HD + 8) with 16-byte
// cp.async; rows >= valid are zero-filled without reading global memory. UNROLL: the unrolled loop
// keeps the backward free of spills; the rolled one saves the forward ~80 registers (3 blocks/SM).
template <int HD, int ROWS, bool UNROLL = true>
__device__ __forceinline__ void cp_tile(__half* dst, const __half* src, int valid) {
  constexpr int chunks = HD / 8, threads = kMmaWarps * 32;  // 16-byte pieces per row
  static_assert(ROWS * chunks % threads == 0, "tile pieces must split evenly over the block");
  auto piece = [&](int c) {
    const int r = c / chunks, col = (c % chunks) * 8;
    const bool in = r < valid;
    cp_async_16(dst + r * (HD + 8) + col, in ? src + size_t(r) * HD + col : src, in);
  };
  if constexpr (UNROLL) {
#pragma unroll
    for (int it = 0; it < ROWS * chunks / threads; ++it) piece(threadIdx.x + it * threads);
  } else {
#pragma unroll 1
    for (int c = threadIdx.x; c < ROWS * chunks; c += threads) piece(c);
  }
}

// One body of ~150 lines, its phases marked: the Q fragments, the S and O accumulators and the
// softmax state live in registers across the whole key loop, and splitting it could move nvcc's
// register allocation (the static check pins registers and spills), which only a GPU can measure.
template <int HD>
__global__ void __launch_bounds__(kMmaWarps * 32)
    attn_fwd_mma_kernel(AttentionParams p, const __half* __restrict__ q, const __half* __restrict__ k,
                        const __half* __restrict__ v, const __half* __restrict__ mask, const int64_t* __restrict__ moff,
                        __half* __restrict__ out, float* __restrict__ lse, float scale) {
  constexpr int LDS = HD + 8, KS = HD / 16, NT = kMmaKeys / 8, ON = HD / 8;
  DK_DYNAMIC_SHARED(__half, smem);
  __half* Qs = smem;
  __half* Ks = Qs + kMmaRows * LDS;  // two buffers
  __half* Vs = Ks + 2 * kMmaKeys * LDS;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
  const int mi = lane >> 3, mr = lane & 7;  // which 8x8 matrix / row this lane addresses in ldmatrix
  const int64_t nqb = (p.Lq + kMmaRows - 1) / kMmaRows;
  const int64_t bh = blockIdx.x / nqb;
  int64_t qb = blockIdx.x % nqb;
  if (p.causal) qb = nqb - 1 - qb;  // the longest rows start first
  const int64_t q0 = qb * kMmaRows;
  const int64_t mo = p.has_mask ? moff[bh] : 0;
  const __half* kb = k + bh * p.Lk * HD;
  const __half* vb = v + bh * p.Lk * HD;
  const int64_t kend = p.causal ? imin(p.Lk, q0 + kMmaRows) : p.Lk;
  const int ntiles = int((kend + kMmaKeys - 1) / kMmaKeys);

  cp_tile<HD, kMmaRows, false>(Qs, q + (bh * p.Lq + q0) * HD, int(imin(kMmaRows, p.Lq - q0)));
  if (ntiles > 0) {
    cp_tile<HD, kMmaKeys, false>(Ks, kb, int(imin(kMmaKeys, p.Lk)));
    cp_tile<HD, kMmaKeys, false>(Vs, vb, int(imin(kMmaKeys, p.Lk)));
  }
  cp_async_commit();

  uint32_t qf[KS][4];
  float o[ON][4];
#pragma unroll
  for (int n = 0; n < ON; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const float log2e = 1.4426950408889634f, scale_log2 = scale * log2e;
  const int64_t row0 = q0 + warp * 16 + g;  // this lane's rows: row0 and row0 + 8

  for (int tile = 0; tile < ntiles; ++tile) {
    const int64_t k0 = int64_t(tile) * kMmaKeys;
    cp_async_wait<0>();
    __syncthreads();  // tile `tile` (and Q) landed for every warp; the other buffer is free
    if (tile == 0) {
#pragma unroll
      for (int kk = 0; kk < KS; ++kk)
        ldmatrix_x4(qf[kk], Qs + (warp * 16 + (mi & 1) * 8 + mr) * LDS + kk * 16 + (mi >> 1) * 8);
    }
    if (tile + 1 < ntiles) {  // prefetch the next K/V tile into the other buffer
      const int64_t k1 = k0 + kMmaKeys;
      const int nb = (tile + 1) & 1;
      cp_tile<HD, kMmaKeys, false>(Ks + nb * kMmaKeys * LDS, kb + k1 * HD, int(imin(kMmaKeys, p.Lk - k1)));
      cp_tile<HD, kMmaKeys, false>(Vs + nb * kMmaKeys * LDS, vb + k1 * HD, int(imin(kMmaKeys, p.Lk - k1)));
    }
    cp_async_commit();
    const __half* Kt = Ks + (tile & 1) * kMmaKeys * LDS;
    const __half* Vt = Vs + (tile & 1) * kMmaKeys * LDS;

    float s[NT][4];
#pragma unroll
    for (int n = 0; n < NT; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KS; ++kk) {
#pragma unroll
      for (int n = 0; n < NT; n += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, Kt + ((n + (mi >> 1)) * 8 + mr) * LDS + kk * 16 + (mi & 1) * 8);
        mma_m16n8k16_f16(s[n], qf[kk], b, s[n]);
        mma_m16n8k16_f16(s[n + 1], qf[kk], b + 2, s[n + 1]);
      }
    }

    // scale, mask, causality, in log2 units (x * log2(e), so the exponentials are exp2f); running
    // max and rescale per row half h (rows row0 + 8h). Interior tiles (all keys in range, no mask,
    // not crossing the causal diagonal) skip the per-element checks.
    float mx[2] = {-INFINITY, -INFINITY};
    const bool interior = !p.has_mask && k0 + kMmaKeys <= p.Lk && (!p.causal || k0 + kMmaKeys - 1 <= q0);
    if (interior) {
#pragma unroll
      for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          s[n][r] *= scale_log2;
          mx[r >> 1] = fmaxf(mx[r >> 1], s[n][r]);
        }
    } else {
#pragma unroll
      for (int n = 0; n < NT; ++n)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int64_t i = row0 + 8 * (r >> 1), j = k0 + n * 8 + 2 * t + (r & 1);
          float x = -INFINITY;
          if (visible(p, i, j)) {
            x = s[n][r] * scale_log2;
            if (p.has_mask) x += __half2float(mask[mo + i * p.m_rs + j * p.m_cs]) * log2e;
          }
          s[n][r] = x;
          mx[r >> 1] = fmaxf(mx[r >> 1], x);
        }
    }
    float msafe[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
      const float mn = fmaxf(m[h], mx[h]);
      msafe[h] = mn == -INFINITY ? 0.0f : mn;
      const float alpha = exp2f(m[h] - msafe[h]);
      m[h] = mn;
      l[h] *= alpha;
#pragma unroll
      for (int n = 0; n < ON; ++n) {
        o[n][2 * h] *= alpha;
        o[n][2 * h + 1] *= alpha;
      }
    }
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const float e = exp2f(s[n][r] - msafe[r >> 1]);
        s[n][r] = e;
        l[r >> 1] += e;
      }

    // O += P V: P's accumulator fragments are the A fragments of the 16-key steps
#pragma unroll
    for (int kk = 0; kk < NT / 2; ++kk) {
      const uint32_t a[4] = {pack_half2(s[2 * kk][0], s[2 * kk][1]), pack_half2(s[2 * kk][2], s[2 * kk][3]),
                             pack_half2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack_half2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int n = 0; n < ON; n += 2) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, Vt + (kk * 16 + (mi & 1) * 8 + mr) * LDS + (n + (mi >> 1)) * 8);
        mma_m16n8k16_f16(o[n], a, b, o[n]);
        mma_m16n8k16_f16(o[n + 1], a, b + 2, o[n + 1]);
      }
    }
  }
  cp_async_wait<0>();

#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
    const int64_t i = row0 + 8 * h;
    if (i >= p.Lq) continue;
    const bool empty = l[h] == 0.0f;  // nothing to attend to (a NaN l is not empty: NaN propagates)
    const float inv = empty ? 0.0f : 1.0f / l[h];
    __half* orow = out + (bh * p.Lq + i) * HD;
#pragma unroll
    for (int n = 0; n < ON; ++n) {
      const __half2 val = __floats2half2_rn(o[n][2 * h] * inv, o[n][2 * h + 1] * inv);
      *reinterpret_cast<__half2*>(orow + n * 8 + 2 * t) = val;
    }
    if (t == 0) lse[bh * p.Lq + i] = empty ? INFINITY : m[h] * 0.6931471805599453f + logf(l[h]);  // m: log2 units
  }
}

template <int HD>
void launch_fwd_mma(const AttentionParams& p, const __half* q, const __half* k, const __half* v, const __half* mask,
                    const int64_t* moff, __half* out, float* lse, cudaStream_t stream) {
  const size_t smem = mma_fwd_smem<HD>();
  auto kernel = attn_fwd_mma_kernel<HD>;
  set_max_dynamic_shared(kernel, smem);
  const int64_t blocks = p.BH * ((p.Lq + kMmaRows - 1) / kMmaRows);
  launch(kernel, dim3(unsigned(blocks)), dim3(kMmaWarps * 32), smem, stream, p, q, k, v, mask, moff, out, lse,
         static_cast<float>(p.scale));
}

}  // namespace dk::cuda::attn
