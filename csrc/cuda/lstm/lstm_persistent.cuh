#pragma once
// The persistent LSTM recurrence: one cooperative launch runs all T steps (forward or backward).
// Block k owns hidden units [kU*k, kU*k + kU) and keeps their slice of W_hh in shared memory for
// the whole launch; the grid meets at grid_sync() after each step, and what the next step needs
// from other blocks (h forward, dgates backward) goes through global memory, read with ordinary
// (coherent) loads after the barrier. The fit rule is in lstm_persistent_plan.h.
#include "common/lstm_params.h"
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/numeric.cuh"
#include "cuda/lstm/lstm_step.cuh"

namespace dk::cuda {

namespace lstm_persist {
constexpr int kU = 4;  // hidden units per block
constexpr int kThreads = 256;
// Two blocks per SM at least: a register budget of 128 (without it ptxas capped these at 64 and spilt).
constexpr int kMinBlocks = 2;
constexpr int kRows = 64;  // batch rows per pass; pointwise thread (row, unit) = (tid / kU, tid % kU)
// Forward: K (= H) in 32-wide shared tiles split over 4 thread groups, each thread 4 rows x 4 gates
// of one unit. Backward: K (= 4H) in 64-wide tiles split over 16 groups, each thread 4 rows x 4
// units. Both read 5 shared words (4 of h or dgates, one 4-wide W vector) per 16 FMA.
constexpr int kFwdKT = 32, kFwdSplit = 4;
constexpr int kBwdKT = 64, kBwdSplit = 16;
__host__ __device__ inline int64_t round_up(int64_t k, int64_t m) { return (k + m - 1) / m * m; }
// Dynamic shared memory: the W_hh slice in the element type, K padded to whole tiles with zeros.
template <typename T>
size_t fwd_smem(int64_t H) {
  return size_t(round_up(H, kFwdKT)) * 4 * kU * sizeof(T);
}
template <typename T>
size_t bwd_smem(int64_t H) {
  return size_t(round_up(4 * H, kBwdKT)) * kU * sizeof(T);
}
template <typename A>
constexpr size_t fwd_static_smem() {
  return sizeof(A) * (kRows * (kFwdKT + 1) + kFwdSplit * kRows * kU * 4);
}
template <typename A>
constexpr size_t bwd_static_smem() {
  return sizeof(A) * (kRows * (kBwdKT + 2) + kBwdSplit * kRows * kU);
}
inline unsigned blocks(int64_t H) { return unsigned((H + kU - 1) / kU); }

// Four consecutive elements of shared memory (16-byte aligned for float: one vector load).
template <typename T, typename A>
__device__ __forceinline__ void load4(const T* p, A out[4]) {
#pragma unroll
  for (int g = 0; g < 4; ++g) out[g] = to_acc(p[g]);
}
template <>
__device__ __forceinline__ void load4<float, float>(const float* p, float out[4]) {
  const float4 v = *reinterpret_cast<const float4*>(p);
  out[0] = v.x;
  out[1] = v.y;
  out[2] = v.z;
  out[3] = v.w;
}
}  // namespace lstm_persist

template <typename T, typename A>
struct LstmFwdSeq {
  int64_t steps, B, H;
  const A* proj;  // (T, B, 4H): x W_ih^T, no bias
  const T* w_hh;  // (4H, H)
  const T* b_ih;  // (4H,) or nullptr
  const T* b_hh;
  const T* h0;  // (B, H) or nullptr (zeros)
  const T* c0;
  T* y;      // (T, B, H); y[t-1] is step t's h operand, written by every block
  T* gates;  // (T, B, 4H) activations, or nullptr
  T* xh;     // (T, B, xh_stride): h_t goes to row t+1's h part, or nullptr
  int64_t xh_stride, xh_h_offset;
  T* cs;    // (T+1, B, H) or nullptr, then cbuf (2, B, H) ping-pong
  T* cbuf;  // cs[0] = c0 is written by the save-inputs kernel, not here
  T* hT;
  T* cT;
};

// Both persistent kernels are over 80 lines, kept whole: each is the whole recurrence (W_hh slice
// load, then per step: GEMM tile, gates, grid_sync), and the grid-wide barrier's placement is the
// thing to read; the register budget (kernels.toml) is checked for the kernel as one unit.
template <typename T, typename A>
__global__ void __launch_bounds__(lstm_persist::kThreads, lstm_persist::kMinBlocks)
    lstm_fwd_persistent_kernel(LstmFwdSeq<T, A> s) {
  using namespace lstm_persist;
  constexpr int KQ = kFwdKT / kFwdSplit;
  DK_DYNAMIC_SHARED(T, wsm);  // wsm[(k * kU + u) * 4 + g] = W_hh[g*H + j0 + u, k]
  __shared__ A hs[kRows][kFwdKT + 1];
  __shared__ A red[kFwdSplit][kRows][kU][4];
  const int tid = threadIdx.x, u = tid % kU, r = tid / kU;                               // pointwise: row r, unit u
  const int q = tid / (kThreads / kFwdSplit), rg = (tid % (kThreads / kFwdSplit)) / kU;  // GEMM: rows rg + 16m
  const int64_t H = s.H, G = 4 * H, B = s.B, BH = B * H, Kp = round_up(H, kFwdKT);
  const int64_t j0 = int64_t(blockIdx.x) * kU, j = j0 + u;
  for (int64_t e = tid; e < Kp * 4 * kU; e += kThreads) {
    const int64_t k = e / (4 * kU);
    const int uu = int(e % (4 * kU)) / 4, g = int(e % 4);
    const int64_t jj = j0 + uu;
    wsm[e] = (k < H && jj < H) ? s.w_hh[(g * H + jj) * H + k] : from_acc<T>(A(0));
  }
  A bias[4];
#pragma unroll
  for (int g = 0; g < 4; ++g) {
    bias[g] = A(0);
    if (j < H && s.b_ih) bias[g] += to_acc(s.b_ih[g * H + j]);
    if (j < H && s.b_hh) bias[g] += to_acc(s.b_hh[g * H + j]);
  }
  __syncthreads();
  for (int64_t t = 0; t < s.steps; ++t) {
    const T* hp = t == 0 ? s.h0 : s.y + (t - 1) * BH;
    const T* cp = t == 0 ? s.c0 : (s.cs ? s.cs + t * BH : s.cbuf + ((t - 1) % 2) * BH);
    T* c_out = s.cs ? s.cs + (t + 1) * BH : s.cbuf + (t % 2) * BH;
    const bool last = t == s.steps - 1;
    for (int64_t b0 = 0; b0 < B; b0 += kRows) {
      A acc[4][4];
#pragma unroll
      for (int m = 0; m < 4; ++m)
#pragma unroll
        for (int g = 0; g < 4; ++g) acc[m][g] = A(0);
      if (hp != nullptr) {  // uniform over the grid
        for (int64_t k0 = 0; k0 < H; k0 += kFwdKT) {
          for (int e = tid; e < kRows * kFwdKT; e += kThreads) {
            const int rr = e / kFwdKT, c = e % kFwdKT;
            const int64_t gb = b0 + rr, gk = k0 + c;
            hs[rr][c] = (gb < B && gk < H) ? to_acc(hp[gb * H + gk]) : A(0);
          }
          __syncthreads();
#pragma unroll
          for (int i = 0; i < KQ; ++i) {
            const int kk = q * KQ + i;
            A w[4], hv[4];
            load4(wsm + ((k0 + kk) * kU + u) * 4, w);
#pragma unroll
            for (int m = 0; m < 4; ++m) hv[m] = hs[rg + 16 * m][kk];
#pragma unroll
            for (int m = 0; m < 4; ++m)
#pragma unroll
              for (int g = 0; g < 4; ++g) acc[m][g] += hv[m] * w[g];
          }
          __syncthreads();
        }
      }
#pragma unroll
      for (int m = 0; m < 4; ++m)
#pragma unroll
        for (int g = 0; g < 4; ++g) red[q][rg + 16 * m][u][g] = acc[m][g];
      __syncthreads();
      const int64_t b = b0 + r;
      if (b < B && j < H) {
        A z[4];
        const A* pr = s.proj + (t * B + b) * G;
#pragma unroll
        for (int g = 0; g < 4; ++g) {
          A v = pr[g * H + j] + bias[g];
#pragma unroll
          for (int qq = 0; qq < kFwdSplit; ++qq) v += red[qq][r][u][g];
          z[g] = v;
        }
        const int64_t bj = b * H + j;
        const A i = dk_sigmoid(z[0]), f = dk_sigmoid(z[1]), g = dk_tanh(z[2]), o = dk_sigmoid(z[3]);
        const A c = f * (cp ? to_acc(cp[bj]) : A(0)) + i * g;
        const T ct = from_acc<T>(c), ht = from_acc<T>(o * dk_tanh(c));
        c_out[bj] = ct;
        s.y[t * BH + bj] = ht;
        if (s.gates) {
          T* a = s.gates + (t * B + b) * G;
          a[j] = from_acc<T>(i);
          a[H + j] = from_acc<T>(f);
          a[2 * H + j] = from_acc<T>(g);
          a[3 * H + j] = from_acc<T>(o);
        }
        if (s.xh && !last) s.xh[((t + 1) * B + b) * s.xh_stride + s.xh_h_offset + j] = ht;
        if (last) {
          s.hT[bj] = ht;
          s.cT[bj] = ct;
        }
      }
      __syncthreads();  // red is rewritten by the next pass
    }
    if (!last) grid_sync();
  }
}

template <typename T, typename A>
struct LstmBwdSeq {
  int64_t steps, B, H;
  const T* w_hh;   // (4H, H)
  const T* gates;  // (T, B, 4H) activations
  const T* cs;     // (T+1, B, H)
  const T* dy;     // (T, B, H) or nullptr
  const T* dhT;    // (B, H) or nullptr
  const T* dcT;
  T* dgates;  // (T, B, 4H); dgates[t+1] is step t's operand, written by every block
  A* dcbuf;   // (2, B, H) ping-pong
  T* dc0;     // (B, H) or nullptr
};

template <typename T, typename A>
__global__ void __launch_bounds__(lstm_persist::kThreads, lstm_persist::kMinBlocks)
    lstm_bwd_persistent_kernel(LstmBwdSeq<T, A> s) {
  using namespace lstm_persist;
  constexpr int KQ = kBwdKT / kBwdSplit;
  DK_DYNAMIC_SHARED(T, wsm);  // wsm[k * kU + u] = W_hh[k, j0 + u], k < 4H
  // Row stride kBwdKT + 2: a warp (rows rg = 0..15 of two K groups) reads 32 distinct banks.
  __shared__ A ds[kRows][kBwdKT + 2];
  __shared__ A red[kBwdSplit][kRows][kU];
  const int tid = threadIdx.x, u = tid % kU, r = tid / kU;  // pointwise: row r, unit u
  const int q = tid / 16, rg = tid % 16;                    // GEMM: K group q (k = q + 16i), rows rg + 16m
  const int64_t H = s.H, G = 4 * H, B = s.B, BH = B * H, Kp = round_up(G, kBwdKT);
  const int64_t j0 = int64_t(blockIdx.x) * kU, j = j0 + u;
  for (int64_t e = tid; e < Kp * kU; e += kThreads) {
    const int64_t k = e / kU, jj = j0 + e % kU;
    wsm[e] = (k < G && jj < H) ? s.w_hh[k * H + jj] : from_acc<T>(A(0));
  }
  __syncthreads();
  for (int64_t t = s.steps - 1; t >= 0; --t) {
    const bool last = t == s.steps - 1;
    const T* dgn = last ? nullptr : s.dgates + (t + 1) * B * G;
    for (int64_t b0 = 0; b0 < B; b0 += kRows) {
      A acc[4][kU];
#pragma unroll
      for (int m = 0; m < 4; ++m)
#pragma unroll
        for (int v = 0; v < kU; ++v) acc[m][v] = A(0);
      if (dgn != nullptr) {
        for (int64_t k0 = 0; k0 < G; k0 += kBwdKT) {
          for (int e = tid; e < kRows * kBwdKT; e += kThreads) {
            const int rr = e / kBwdKT, c = e % kBwdKT;
            const int64_t gb = b0 + rr, gk = k0 + c;
            ds[rr][c] = (gb < B && gk < G) ? to_acc(dgn[gb * G + gk]) : A(0);
          }
          __syncthreads();
#pragma unroll
          for (int i = 0; i < KQ; ++i) {
            const int kk = q + kBwdSplit * i;
            A w[kU], dv[4];
            load4(wsm + (k0 + kk) * kU, w);
#pragma unroll
            for (int m = 0; m < 4; ++m) dv[m] = ds[rg + 16 * m][kk];
#pragma unroll
            for (int m = 0; m < 4; ++m)
#pragma unroll
              for (int v = 0; v < kU; ++v) acc[m][v] += dv[m] * w[v];
          }
          __syncthreads();
        }
      }
#pragma unroll
      for (int m = 0; m < 4; ++m)
#pragma unroll
        for (int v = 0; v < kU; ++v) red[q][rg + 16 * m][v] = acc[m][v];
      __syncthreads();
      const int64_t b = b0 + r;
      if (b < B && j < H) {
        const int64_t bj = b * H + j;
        A dh = A(0);
#pragma unroll
        for (int qq = 0; qq < kBwdSplit; ++qq) dh += red[qq][r][u];
        if (s.dy) dh += to_acc(s.dy[t * BH + bj]);
        if (last && s.dhT) dh += to_acc(s.dhT[bj]);
        const T* a = s.gates + (t * B + b) * G;
        const A i = to_acc(a[j]), f = to_acc(a[H + j]), g = to_acc(a[2 * H + j]), o = to_acc(a[3 * H + j]);
        const A c = to_acc(s.cs[(t + 1) * BH + bj]), cp = to_acc(s.cs[t * BH + bj]);
        const A tc = dk_tanh(c);
        A dc = dh * o * (A(1) - tc * tc);
        if (!last) dc += s.dcbuf[((t + 1) % 2) * BH + bj];
        if (last && s.dcT) dc += to_acc(s.dcT[bj]);
        T* d = s.dgates + (t * B + b) * G;
        d[j] = from_acc<T>(dc * g * i * (A(1) - i));
        d[H + j] = from_acc<T>(dc * cp * f * (A(1) - f));
        d[2 * H + j] = from_acc<T>(dc * i * (A(1) - g * g));
        d[3 * H + j] = from_acc<T>(dh * tc * o * (A(1) - o));
        const A dcp = dc * f;
        s.dcbuf[(t % 2) * BH + bj] = dcp;
        if (t == 0 && s.dc0) s.dc0[bj] = from_acc<T>(dcp);
      }
      __syncthreads();  // red is rewritten by the next pass
    }
    if (t > 0) grid_sync();
  }
}

}  // namespace dk::cuda
