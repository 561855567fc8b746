#pragma once
// One LSTM time step per launch, forward and backward, each the recurrent GEMM fused with the
// gate pointwise math. Tiling: a 256-thread block owns a 16 (batch rows) x 16 (hidden units)
// tile and all four gates of it, so the pointwise update needs nothing from other blocks;
// K runs in 32-wide shared-memory tiles. Floor and measurements: benchmarks/results/cuda_lstm.md.
#include "common/lstm_params.h"
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/numeric.cuh"

namespace dk::cuda {

namespace lstm_step {
constexpr int kRows = 16;  // batch rows per block
constexpr int kCols = 16;  // hidden units per block (x 4 gates)
constexpr int kK = 32;     // reduction tile
constexpr int kThreads = kRows * kCols;
}  // namespace lstm_step

__device__ __forceinline__ float dk_sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }
__device__ __forceinline__ double dk_sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }
__device__ __forceinline__ float dk_tanh(float z) { return tanhf(z); }
__device__ __forceinline__ double dk_tanh(double z) { return tanh(z); }

// Step t of the forward. A is the accumulator type (float for half and float, double for double).
template <typename T, typename A>
struct LstmFwdStep {
  int64_t B, H;
  const A* proj;     // (B, 4H): x_t W_ih^T of this step (bias not yet added)
  const T* w_hh;     // (4H, H)
  const T* b_ih;     // (4H,) or nullptr
  const T* b_hh;     // (4H,) or nullptr
  const T* h_prev;   // (B, H) or nullptr (zeros)
  const T* c_prev;   // (B, H) or nullptr (zeros)
  T* c_out;          // (B, H)
  T* h_out;          // (B, H): y[t]
  T* act;            // (B, 4H) gate activations i, f, g, o, or nullptr (inference)
  T* h_next_row;     // h_t into the next step's [x, h] row (row stride xh_stride), or nullptr
  int64_t xh_stride;
  T* h_final;        // hT / cT at the last step, else nullptr
  T* c_final;
};

template <typename T, typename A>
__global__ void lstm_fwd_step_kernel(LstmFwdStep<T, A> s) {
  using namespace lstm_step;
  __shared__ A hs[kRows][kK + 1];
  __shared__ A ws[4 * kCols][kK + 1];
  const int tid = threadIdx.x, tx = tid % kCols, ty = tid / kCols;
  const int64_t b0 = int64_t(blockIdx.y) * kRows, j0 = int64_t(blockIdx.x) * kCols;
  const int64_t H = s.H, G = 4 * H, b = b0 + ty, j = j0 + tx;
  A acc[4] = {A(0), A(0), A(0), A(0)};
  if (s.h_prev != nullptr) {  // uniform over the grid: every thread reaches the same barriers
    for (int64_t k0 = 0; k0 < H; k0 += kK) {
      for (int e = tid; e < kRows * kK; e += kThreads) {
        const int r = e / kK, c = e % kK;
        const int64_t gb = b0 + r, gk = k0 + c;
        hs[r][c] = (gb < s.B && gk < H) ? to_acc(s.h_prev[gb * H + gk]) : A(0);
      }
      for (int e = tid; e < 4 * kCols * kK; e += kThreads) {
        const int r = e / kK, c = e % kK, g = r / kCols;
        const int64_t gj = j0 + r % kCols, gk = k0 + c;
        ws[r][c] = (gj < H && gk < H) ? to_acc(s.w_hh[(g * H + gj) * H + gk]) : A(0);
      }
      __syncthreads();
#pragma unroll 8
      for (int kk = 0; kk < kK; ++kk) {
        const A hv = hs[ty][kk];
#pragma unroll
        for (int g = 0; g < 4; ++g) acc[g] += hv * ws[g * kCols + tx][kk];
      }
      __syncthreads();
    }
  }
  if (b >= s.B || j >= H) return;  // after the last barrier
  A z[4];
#pragma unroll
  for (int g = 0; g < 4; ++g) {
    const int64_t col = g * H + j;
    A v = acc[g] + s.proj[b * G + col];
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
  const T* dg_next;   // (B, 4H) dgates of step t+1, or nullptr at the last step
  const T* w_hh;      // (4H, H)
  const T* dy;        // (B, H) dy[t] or nullptr
  const T* dh_last;   // dhT at the last step, or nullptr
  const A* dc_next;   // (B, H) dc from step t+1 (workspace), or nullptr
  const T* dc_last;   // dcT at the last step, or nullptr
  const T* act;       // (B, 4H) activations of step t
  const T* c;         // (B, H) c_t
  const T* c_prev;    // (B, H) c_{t-1}
  T* dg;              // (B, 4H) dgates of step t (the element type: the GEMMs' operand)
  A* dc_prev;         // (B, H) workspace
  T* dc0;             // (B, H) at t = 0 when requested, else nullptr
};

template <typename T, typename A>
__global__ void lstm_bwd_step_kernel(LstmBwdStep<T, A> s) {
  using namespace lstm_step;
  __shared__ A ds[kRows][kK + 1];
  __shared__ A ws[kK][kCols + 1];
  const int tid = threadIdx.x, tx = tid % kCols, ty = tid / kCols;
  const int64_t b0 = int64_t(blockIdx.y) * kRows, j0 = int64_t(blockIdx.x) * kCols;
  const int64_t H = s.H, G = 4 * H, b = b0 + ty, j = j0 + tx;
  A dh = A(0);
  if (s.dg_next != nullptr) {
    for (int64_t k0 = 0; k0 < G; k0 += kK) {
      for (int e = tid; e < kRows * kK; e += kThreads) {
        const int r = e / kK, c = e % kK;
        const int64_t gb = b0 + r, gk = k0 + c;
        ds[r][c] = (gb < s.B && gk < G) ? to_acc(s.dg_next[gb * G + gk]) : A(0);
      }
      for (int e = tid; e < kK * kCols; e += kThreads) {
        const int r = e / kCols, c = e % kCols;
        const int64_t gk = k0 + r, gj = j0 + c;
        ws[r][c] = (gk < G && gj < H) ? to_acc(s.w_hh[gk * H + gj]) : A(0);
      }
      __syncthreads();
#pragma unroll 8
      for (int kk = 0; kk < kK; ++kk) dh += ds[ty][kk] * ws[kk][tx];
      __syncthreads();
    }
  }
  if (b >= s.B || j >= H) return;
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
