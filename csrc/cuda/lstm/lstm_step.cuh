#pragma once
// One LSTM time step per launch, forward and backward, each the recurrent GEMM fused with the
// gate pointwise math. Tiling: a 256-thread block owns a 16 (batch rows) x 16 (hidden units)
// tile and all four gates of it, so the pointwise update needs nothing from other blocks (a
// 64 x 512 step is 128 blocks: one wave on 132 SMs). K runs in shared-memory tiles that the
// block's warps split among themselves (forward: 4 groups, each thread 2 rows x 2 units x 4 gates;
// backward: 8 groups, each thread 2 rows x 4 units), so each shared load feeds >1 FMA; the partial
// sums meet in shared memory before the pointwise step. Floor: benchmarks/results/cuda_lstm.md.
#include "common/lstm_params.h"
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/numeric.cuh"

namespace dk::cuda {

namespace lstm_step {
constexpr int kRows = 16;  // batch rows per block
constexpr int kCols = 16;  // hidden units per block (x 4 gates)
constexpr int kThreads = 256;
constexpr int kFwdSplit = 4, kBwdSplit = 8;  // K groups per block
// K per shared tile: float 32 / 64 (forward / backward), halved for double to stay under 48 KiB.
template <typename A>
constexpr int fwd_k_tile() {
  return sizeof(A) == 8 ? 16 : 32;
}
template <typename A>
constexpr int bwd_k_tile() {
  return sizeof(A) == 8 ? 32 : 64;
}
}  // namespace lstm_step

__device__ __forceinline__ float dk_sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }
__device__ __forceinline__ double dk_sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }
__device__ __forceinline__ float dk_tanh(float z) { return tanhf(z); }
__device__ __forceinline__ double dk_tanh(double z) { return tanh(z); }

// Step t of the forward. A is the accumulator type (float for half and float, double for double).
template <typename T, typename A>
struct LstmFwdStep {
  int64_t B, H;
  const A* proj;    // (B, 4H): x_t W_ih^T of this step (bias not yet added)
  const T* w_hh;    // (4H, H)
  const T* b_ih;    // (4H,) or nullptr
  const T* b_hh;    // (4H,) or nullptr
  const T* h_prev;  // (B, H) or nullptr (zeros)
  const T* c_prev;  // (B, H) or nullptr (zeros)
  T* c_out;         // (B, H)
  T* h_out;         // (B, H): y[t]
  T* act;           // (B, 4H) gate activations i, f, g, o, or nullptr (inference)
  T* h_next_row;    // h_t into the next step's [x, h] row (row stride xh_stride), or nullptr
  int64_t xh_stride;
  T* h_final;  // hT / cT at the last step, else nullptr
  T* c_final;
};

// Over 80 lines, kept whole as the step's algorithm in order (recurrent GEMM tile, gates, cell
// update, stores), as the attention kernels are: a device-function split would hide the shared
// memory and register budget that ptxas must see at once (csrc/cuda/kernels.toml checks it).
template <typename T, typename A>
__global__ void __launch_bounds__(lstm_step::kThreads) lstm_fwd_step_kernel(LstmFwdStep<T, A> s) {
  using namespace lstm_step;
  constexpr int KT = fwd_k_tile<A>(), KQ = KT / kFwdSplit;
  __shared__ A hs[kRows][KT + 1];
  __shared__ A ws[4 * kCols][KT + 1];
  __shared__ A red[kFwdSplit][4][kRows][kCols];
  const int tid = threadIdx.x;
  const int q = tid / 64, tb = (tid % 64) / 8, tj = tid % 8;  // K group; rows tb, tb+8; units tj, tj+8
  const int64_t b0 = int64_t(blockIdx.y) * kRows, j0 = int64_t(blockIdx.x) * kCols;
  const int64_t H = s.H, G = 4 * H;
  A acc[2][2][4];
#pragma unroll
  for (int bi = 0; bi < 2; ++bi)
#pragma unroll
    for (int ji = 0; ji < 2; ++ji)
#pragma unroll
      for (int g = 0; g < 4; ++g) acc[bi][ji][g] = A(0);
  if (s.h_prev != nullptr) {  // uniform over the grid: every thread reaches the same barriers
    for (int64_t k0 = 0; k0 < H; k0 += KT) {
      for (int e = tid; e < kRows * KT; e += kThreads) {
        const int r = e / KT, c = e % KT;
        const int64_t gb = b0 + r, gk = k0 + c;
        hs[r][c] = (gb < s.B && gk < H) ? to_acc(s.h_prev[gb * H + gk]) : A(0);
      }
      for (int e = tid; e < 4 * kCols * KT; e += kThreads) {
        const int r = e / KT, c = e % KT, g = r / kCols;
        const int64_t gj = j0 + r % kCols, gk = k0 + c;
        ws[r][c] = (gj < H && gk < H) ? to_acc(s.w_hh[(g * H + gj) * H + gk]) : A(0);
      }
      __syncthreads();
#pragma unroll
      for (int i = 0; i < KQ; ++i) {
        const int kk = q * KQ + i;
        const A h0v = hs[tb][kk], h1v = hs[tb + 8][kk];
#pragma unroll
        for (int g = 0; g < 4; ++g) {
          const A w0 = ws[g * kCols + tj][kk], w1 = ws[g * kCols + tj + 8][kk];
          acc[0][0][g] += h0v * w0;
          acc[0][1][g] += h0v * w1;
          acc[1][0][g] += h1v * w0;
          acc[1][1][g] += h1v * w1;
        }
      }
      __syncthreads();
    }
  }
#pragma unroll
  for (int bi = 0; bi < 2; ++bi)
#pragma unroll
    for (int ji = 0; ji < 2; ++ji)
#pragma unroll
      for (int g = 0; g < 4; ++g) red[q][g][tb + 8 * bi][tj + 8 * ji] = acc[bi][ji][g];
  __syncthreads();
  const int ty = tid / kCols, tx = tid % kCols;
  const int64_t b = b0 + ty, j = j0 + tx;
  if (b >= s.B || j >= H) return;  // after the last barrier
  A z[4];
#pragma unroll
  for (int g = 0; g < 4; ++g) {
    const int64_t col = g * H + j;
    A v = s.proj[b * G + col];
#pragma unroll
    for (int qq = 0; qq < kFwdSplit; ++qq) v += red[qq][g][ty][tx];
    if (s.b_ih) v += to_acc(s.b_ih[col]);
    if (s.b_hh) v += to_acc(s.b_hh[col]);
    z[g] = v;
  }
  const A i = dk_sigmoid(z[0]), f = dk_sigmoid(z[1]), g = dk_tanh(z[2]), o = dk_sigmoid(z[3]);
  const A cp = s.c_prev ? to_acc(s.c_prev[b * H + j]) : A(0);
  const A c = f * cp + i * g;
  const A h = o * dk_tanh(c);
  const T ct = from_acc<T>(c), ht = from_acc<T>(h);
  s.c_out[b * H + j] = ct;
  s.h_out[b * H + j] = ht;
  if (s.act) {
    T* a = s.act + b * G;
    a[j] = from_acc<T>(i);
    a[H + j] = from_acc<T>(f);
    a[2 * H + j] = from_acc<T>(g);
    a[3 * H + j] = from_acc<T>(o);
  }
  if (s.h_next_row) s.h_next_row[b * s.xh_stride + j] = ht;
  if (s.h_final) s.h_final[b * H + j] = ht;
  if (s.c_final) s.c_final[b * H + j] = ct;
}

// Step t of the backward: dh_t = dy_t + dgates_{t+1} W_hh (+ dhT at the last step), then the
// gate gradients of step t and dc_{t-1}.
template <typename T, typename A>
struct LstmBwdStep {
  int64_t B, H;
  const T* dg_next;  // (B, 4H) dgates of step t+1, or nullptr at the last step
  const T* w_hh;     // (4H, H)
  const T* dy;       // (B, H) dy[t] or nullptr
  const T* dh_last;  // dhT at the last step, or nullptr
  const A* dc_next;  // (B, H) dc from step t+1 (workspace), or nullptr
  const T* dc_last;  // dcT at the last step, or nullptr
  const T* act;      // (B, 4H) activations of step t
  const T* c;        // (B, H) c_t
  const T* c_prev;   // (B, H) c_{t-1}
  T* dg;             // (B, 4H) dgates of step t (the element type: the GEMMs' operand)
  A* dc_prev;        // (B, H) workspace
  T* dc0;            // (B, H) at t = 0 when requested, else nullptr
};

template <typename T, typename A>
__global__ void __launch_bounds__(lstm_step::kThreads) lstm_bwd_step_kernel(LstmBwdStep<T, A> s) {
  using namespace lstm_step;
  constexpr int KT = bwd_k_tile<A>(), KQ = KT / kBwdSplit;
  __shared__ A ds[kRows][KT + 1];
  __shared__ A ws[KT][kCols + 1];
  __shared__ A red[kBwdSplit][kRows][kCols];
  const int tid = threadIdx.x;
  const int q = tid / 32, tb = (tid % 32) / 4, tj = tid % 4;  // K group (a warp); rows tb, tb+8; units tj+4m
  const int64_t b0 = int64_t(blockIdx.y) * kRows, j0 = int64_t(blockIdx.x) * kCols;
  const int64_t H = s.H, G = 4 * H;
  A acc[2][4];
#pragma unroll
  for (int bi = 0; bi < 2; ++bi)
#pragma unroll
    for (int m = 0; m < 4; ++m) acc[bi][m] = A(0);
  if (s.dg_next != nullptr) {
    for (int64_t k0 = 0; k0 < G; k0 += KT) {
      for (int e = tid; e < kRows * KT; e += kThreads) {
        const int r = e / KT, c = e % KT;
        const int64_t gb = b0 + r, gk = k0 + c;
        ds[r][c] = (gb < s.B && gk < G) ? to_acc(s.dg_next[gb * G + gk]) : A(0);
      }
      for (int e = tid; e < KT * kCols; e += kThreads) {
        const int r = e / kCols, c = e % kCols;
        const int64_t gk = k0 + r, gj = j0 + c;
        ws[r][c] = (gk < G && gj < H) ? to_acc(s.w_hh[gk * H + gj]) : A(0);
      }
      __syncthreads();
#pragma unroll
      for (int i = 0; i < KQ; ++i) {
        const int kk = q * KQ + i;
        const A d0 = ds[tb][kk], d1 = ds[tb + 8][kk];
#pragma unroll
        for (int m = 0; m < 4; ++m) {
          const A w = ws[kk][tj + 4 * m];
          acc[0][m] += d0 * w;
          acc[1][m] += d1 * w;
        }
      }
      __syncthreads();
    }
  }
#pragma unroll
  for (int bi = 0; bi < 2; ++bi)
#pragma unroll
    for (int m = 0; m < 4; ++m) red[q][tb + 8 * bi][tj + 4 * m] = acc[bi][m];
  __syncthreads();
  const int ty = tid / kCols, tx = tid % kCols;
  const int64_t b = b0 + ty, j = j0 + tx;
  if (b >= s.B || j >= H) return;
  A dh = A(0);
#pragma unroll
  for (int qq = 0; qq < kBwdSplit; ++qq) dh += red[qq][ty][tx];
  const int64_t bj = b * H + j;
  if (s.dy) dh += to_acc(s.dy[bj]);
  if (s.dh_last) dh += to_acc(s.dh_last[bj]);
  const T* a = s.act + b * G;
  const A i = to_acc(a[j]), f = to_acc(a[H + j]), g = to_acc(a[2 * H + j]), o = to_acc(a[3 * H + j]);
  const A c = to_acc(s.c[bj]), cp = to_acc(s.c_prev[bj]);
  const A tc = dk_tanh(c);
  A dc = dh * o * (A(1) - tc * tc);
  if (s.dc_next) dc += s.dc_next[bj];
  if (s.dc_last) dc += to_acc(s.dc_last[bj]);
  T* d = s.dg + b * G;
  d[j] = from_acc<T>(dc * g * i * (A(1) - i));
  d[H + j] = from_acc<T>(dc * cp * f * (A(1) - f));
  d[2 * H + j] = from_acc<T>(dc * i * (A(1) - g * g));
  d[3 * H + j] = from_acc<T>(dh * tc * o * (A(1) - o));
  const A dcp = dc * f;
  s.dc_prev[bj] = dcp;
  if (s.dc0) s.dc0[bj] = from_acc<T>(dcp);
}

inline dim3 lstm_step_grid(int64_t B, int64_t H) {
  using namespace lstm_step;
  return dim3(unsigned((H + kCols - 1) / kCols), unsigned((B + kRows - 1) / kRows));
}

template <typename T, typename A>
void launch_lstm_fwd_step(const LstmFwdStep<T, A>& s, cudaStream_t stream) {
  launch(lstm_fwd_step_kernel<T, A>, lstm_step_grid(s.B, s.H), dim3(lstm_step::kThreads), 0, stream, s);
}

template <typename T, typename A>
void launch_lstm_bwd_step(const LstmBwdStep<T, A>& s, cudaStream_t stream) {
  launch(lstm_bwd_step_kernel<T, A>, lstm_step_grid(s.B, s.H), dim3(lstm_step::kThreads), 0, stream, s);
}

}  // namespace dk::cuda
