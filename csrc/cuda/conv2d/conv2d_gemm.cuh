#pragma once
// conv2d forward and backward (dx, dw, db) on the GPU: each GEMM-shaped pass is one instance of the
// GEMM core with the conv operand views of conv2d_operands.cuh; db is a per-channel reduction.
// float32 runs exact FFMA unless tf32 (the user's allow_tf32) picks the m16n8k8 tensor-core math;
// float16 runs m16n8k16 with float accumulation; float64 runs DFMA. Floors: benchmarks/results/cuda_conv.md.
// Groups: the G per-group GEMMs (same M, N, k) go in one launch as grid z (gemm_core.cuh), each block
// shifting the operand views to its group: one launch whatever G (not G launches of a few blocks each),
// and the same kernel instances as G = 1 (the shift is a pointer offset per block, no new templates).
#include <stdexcept>
#include <string>

#include "common/dtype.h"
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/conv2d/conv2d.h"
#include "cuda/conv2d/conv2d_operands.cuh"
#include "cuda/gemm/gemm_core.cuh"

namespace dk::cuda {

namespace conv {

// db[k] = sum over n, q of dy[n, k, q]: one block per channel, fixed-order tree (deterministic).
template <typename T>
__global__ void __launch_bounds__(256)
    bias_grad_kernel(int64_t N, int64_t K, int64_t P, const T* __restrict__ dy, T* __restrict__ db) {
  using A = typename Acc<T>::type;
  __shared__ A part[256];
  const int64_t k = blockIdx.x;
  A s = A(0);
  for (int64_t n = 0; n < N; ++n) {
    const T* row = dy + (n * K + k) * P;
    for (int64_t q = threadIdx.x; q < P; q += 256) s += to_acc(row[q]);
  }
  part[threadIdx.x] = s;
  __syncthreads();
  for (int w = 128; w > 0; w >>= 1) {
    if (int(threadIdx.x) < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[k] = from_acc<T>(part[0]);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

template <class Math>
int wgrad_splits(const Conv2dParams& p) {
  const int64_t crs = p.crs();
  const int64_t tiles = p.G * ((p.K / p.G + Math::BM - 1) / Math::BM) * ((crs + Math::BN - 1) / Math::BN);
  const int64_t k_tiles = (p.N * p.out_plane() + Math::BK - 1) / Math::BK;
  return gemm::split_count(tiles, k_tiles);
}

template <class Math, typename T>
void forward(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y, cudaStream_t s) {
  using A = typename Math::Acc;
  const int64_t M = p.N * p.out_plane(), N = p.K / p.G, K = p.crs();
  Im2colRows<T> opa{p, x};
  RowsK<T> opb{w, K, N * K};
  StoreNchwBias<T, A> epi{y, b, p.K, N, p.out_plane()};
  constexpr int vec = 16 / sizeof(T);
  if constexpr (Math::kKMajor) {
    if (K % vec == 0 && aligned16(w)) {
      gemm::run<Math, Im2colRows<T>, RowsK<T>, StoreNchwBias<T, A>, false, true>(M, N, K, opa, opb, epi, nullptr, 1, s,
                                                                                 p.G);
      return;
    }
  }
  gemm::run<Math, Im2colRows<T>, RowsK<T>, StoreNchwBias<T, A>, false, false>(M, N, K, opa, opb, epi, nullptr, 1, s,
                                                                              p.G);
}

template <class Math, typename T>
void dgrad(const Conv2dParams& p, const T* w, const T* dy, T* dx, cudaStream_t s) {
  using A = typename Math::Acc;
  const int64_t M = p.N * p.in_plane(), N = p.C / p.G, K = p.K / p.G * p.kh * p.kw;
  DyGather<T> opa{p, dy};
  WeightPerChannel<T> opb{p, w};
  StoreNchwBias<T, A> epi{dx, nullptr, p.C, N, p.in_plane()};
  gemm::run<Math, DyGather<T>, WeightPerChannel<T>, StoreNchwBias<T, A>, false, false>(M, N, K, opa, opb, epi, nullptr,
                                                                                       1, s, p.G);
}

template <class Math, typename T>
void wgrad(const Conv2dParams& p, const T* x, const T* dy, T* dw, typename Math::Acc* ws, cudaStream_t s) {
  using A = typename Math::Acc;
  const int64_t M = p.K / p.G, N = p.crs(), K = p.N * p.out_plane();
  DyRows<T> opa{p, dy};
  Im2colCols<T> opb{p, x};
  StoreRows<T, A> epi{dw, N, M * N};
  const int splits = wgrad_splits<Math>(p);
  constexpr int vec = 16 / sizeof(T);
  if constexpr (Math::kKMajor) {
    if (p.out_plane() % vec == 0 && aligned16(dy)) {
      gemm::run<Math, DyRows<T>, Im2colCols<T>, StoreRows<T, A>, true, false>(M, N, K, opa, opb, epi, ws, splits, s,
                                                                              p.G);
      return;
    }
  }
  gemm::run<Math, DyRows<T>, Im2colCols<T>, StoreRows<T, A>, false, false>(M, N, K, opa, opb, epi, ws, splits, s, p.G);
}

template <typename T>
void bias_grad(const Conv2dParams& p, const T* dy, T* db, cudaStream_t s) {
  if (p.K > 0) launch(bias_grad_kernel<T>, dim3(unsigned(p.K)), dim3(256), 0, s, p.N, p.K, p.out_plane(), dy, db);
}

// float64 instances live in conv2d_f64.cu only (docs/CUDA_STATIC.md, "float64").
extern template void forward<gemm::SimtF64, double>(const Conv2dParams&, const double*, const double*, const double*,
                                                    double*, cudaStream_t);
extern template void dgrad<gemm::SimtF64, double>(const Conv2dParams&, const double*, const double*, double*,
                                                  cudaStream_t);
extern template void wgrad<gemm::SimtF64, double>(const Conv2dParams&, const double*, const double*, double*, double*,
                                                  cudaStream_t);
extern template void bias_grad<double>(const Conv2dParams&, const double*, double*, cudaStream_t);

// Calls fn(T*, Math*) for the element type and math the call asks for (null typed tags).
template <typename Fn>
void with_math(DType dt, bool tf32, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::Float32:
      if (tf32)
        fn(static_cast<float*>(nullptr), static_cast<gemm::MmaTf32*>(nullptr));
      else
        fn(static_cast<float*>(nullptr), static_cast<gemm::SimtF32*>(nullptr));
      break;
    case DType::Float64: fn(static_cast<double*>(nullptr), static_cast<gemm::SimtF64*>(nullptr)); break;
    case DType::Float16: fn(static_cast<__half*>(nullptr), static_cast<gemm::MmaF16*>(nullptr)); break;
    default: throw std::invalid_argument(std::string(op) + ": unsupported dtype (float32, float64, float16)");
  }
}

}  // namespace conv
}  // namespace dk::cuda
