#pragma once
// The LSTM's small memory-bound kernels: filling the saved [x, h0] rows and c0 before the
// forward's time loop, and the bias gradient (column sums of every step's dgates).
#include "common/lstm_params.h"
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/numeric.cuh"

namespace dk::cuda {

// xh (T*B, I+H): every row's x part, and the h part of step 0's rows (h0 or zeros);
// cs[0] = c0 or zeros. The h parts of later rows are written by the step kernels.
template <typename T>
__global__ void lstm_save_inputs_kernel(LstmParams p, const T* __restrict__ x, const T* __restrict__ h0,
                                        const T* __restrict__ c0, T* __restrict__ xh, T* __restrict__ cs0) {
  const int64_t I = p.I, H = p.H, XH = I + H, rows = p.rows(), BH = p.B * H;
  const int64_t n = rows * I + p.B * H;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    if (e < rows * I) {
      const int64_t r = e / I, k = e % I;
      xh[r * XH + k] = x[e];
    } else {
      const int64_t bj = e - rows * I, b = bj / H, j = bj % H;
      xh[b * XH + I + j] = h0 ? h0[bj] : from_acc<T>(0);
    }
  }
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < BH; e += int64_t(gridDim.x) * blockDim.x)
    cs0[e] = c0 ? c0[e] : from_acc<T>(0);
}

// db[col] = sum over rows of dg[row, col]. A block owns 32 columns; its 8 warps take every
// 8th row and the partial sums meet in shared memory (fixed order: deterministic).
template <typename T, typename A>
__global__ void lstm_bias_grad_kernel(int64_t rows, int64_t cols, const T* __restrict__ dg, T* __restrict__ db) {
  __shared__ A part[8][33];
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32;
  const int64_t col = int64_t(blockIdx.x) * 32 + lane;
  A s = A(0);
  if (col < cols)
    for (int64_t r = w; r < rows; r += 8) s += to_acc(dg[r * cols + col]);
  part[w][lane] = s;
  __syncthreads();
  if (w == 0 && col < cols) {
    A t = A(0);
    for (int q = 0; q < 8; ++q) t += part[q][lane];
    db[col] = from_acc<T>(t);
  }
}

template <typename T>
void launch_lstm_save_inputs(const LstmParams& p, const T* x, const T* h0, const T* c0, T* xh, T* cs0,
                             cudaStream_t stream) {
  const int64_t n = p.rows() * p.I + p.B * p.H;
  launch(lstm_save_inputs_kernel<T>, dim3(grid_for(n, 256)), dim3(256), 0, stream, p, x, h0, c0, xh, cs0);
}

template <typename T, typename A>
void launch_lstm_bias_grad(int64_t rows, int64_t cols, const T* dg, T* db, cudaStream_t stream) {
  launch(lstm_bias_grad_kernel<T, A>, dim3(unsigned((cols + 31) / 32)), dim3(256), 0, stream, rows, cols, dg, db);
}

}  // namespace dk::cuda
