#pragma once
// INTERIM: a simple, correct tiled GEMM (CUDA cores, 64 x 64 tile, 4 x 4 outputs per thread)
// for the LSTM's all-steps GEMMs until the shared GEMM core in csrc/cuda/gemm/ lands; then
// these calls move to it and this file goes. Operands by element strides, so any transpose is
// a stride swap: C(m, n) = sum_k A(m, k) B(k, n) with A(m, k) = a[m*sam + k*sak], likewise B.
// Column-split epilogue: columns n < split go to c1 (row stride ldc1), the rest to c2 at n - split.
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/numeric.cuh"

namespace dk::cuda {

namespace simple_gemm {
constexpr int kTile = 64, kK = 16, kThreads = 256;
}  // namespace simple_gemm

template <typename TA, typename TB, typename TC>
struct SimpleGemm {
  int64_t M, N, K;
  const TA* a;
  int64_t sam, sak;
  const TB* b;
  int64_t sbk, sbn;
  TC* c1;
  int64_t ldc1;
  TC* c2;  // nullptr when split >= N
  int64_t ldc2, split;
};

template <typename TA, typename TB, typename TC, typename Acc>
__global__ void simple_gemm_kernel(SimpleGemm<TA, TB, TC> g) {
  using namespace simple_gemm;
  __shared__ Acc as[kK][kTile + 1];
  __shared__ Acc bs[kK][kTile + 1];
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t m0 = int64_t(blockIdx.y) * kTile, n0 = int64_t(blockIdx.x) * kTile;
  Acc acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int q = 0; q < 4; ++q) acc[i][q] = Acc(0);
  // Load order: k fastest when that operand is contiguous in k, else m (n) fastest.
  const bool a_kfast = g.sak == 1, b_kfast = g.sbk == 1;
  for (int64_t k0 = 0; k0 < g.K; k0 += kK) {
    for (int e = tid; e < kK * kTile; e += kThreads) {
      const int kk = a_kfast ? e % kK : e / kTile, mm = a_kfast ? e / kK : e % kTile;
      const int64_t gm = m0 + mm, gk = k0 + kk;
      as[kk][mm] = (gm < g.M && gk < g.K) ? to_acc(g.a[gm * g.sam + gk * g.sak]) : Acc(0);
    }
    for (int e = tid; e < kK * kTile; e += kThreads) {
      const int kk = b_kfast ? e % kK : e / kTile, nn = b_kfast ? e / kK : e % kTile;
      const int64_t gn = n0 + nn, gk = k0 + kk;
      bs[kk][nn] = (gn < g.N && gk < g.K) ? to_acc(g.b[gk * g.sbk + gn * g.sbn]) : Acc(0);
    }
    __syncthreads();
#pragma unroll 4
    for (int kk = 0; kk < kK; ++kk) {
      Acc av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = as[kk][ty + 16 * i];
#pragma unroll
      for (int q = 0; q < 4; ++q) bv[q] = bs[kk][tx + 16 * q];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int q = 0; q < 4; ++q) acc[i][q] += av[i] * bv[q];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty + 16 * i;
    if (m >= g.M) continue;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int64_t n = n0 + tx + 16 * q;
      if (n >= g.N) continue;
      if (n < g.split)
        g.c1[m * g.ldc1 + n] = from_acc<TC>(acc[i][q]);
      else
        g.c2[m * g.ldc2 + (n - g.split)] = from_acc<TC>(acc[i][q]);
    }
  }
}

template <typename Acc, typename TA, typename TB, typename TC>
void launch_simple_gemm(const SimpleGemm<TA, TB, TC>& g, cudaStream_t stream) {
  using namespace simple_gemm;
  if (g.M == 0 || g.N == 0) return;
  const dim3 grid(unsigned((g.N + kTile - 1) / kTile), unsigned((g.M + kTile - 1) / kTile));
  launch(simple_gemm_kernel<TA, TB, TC, Acc>, grid, dim3(kThreads), 0, stream, g);
}

}  // namespace dk::cuda
