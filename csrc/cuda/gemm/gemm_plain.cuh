#pragma once
// The plain-GEMM launcher (interface in gemm.h): strided row-major operands as GEMM-core views,
// C = alpha*acc + beta*C as the epilogue. k-contiguous operands (A not transposed, B transposed) are
// staged with cp.async on the tensor-core paths when their leading dimension and base are 16-byte aligned.
#include <stdexcept>
#include <string>

#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/gemm/gemm.h"
#include "cuda/gemm/gemm_core.cuh"
#include "cuda/gemm/gemm_operands.cuh"

namespace dk::cuda {

namespace gemm {

template <typename T, typename A>
struct AlphaBeta {
  T* c;
  int64_t ldc;
  A alpha, beta;
  __device__ void operator()(int64_t m, int64_t n, A v) const {
    T* dst = c + m * ldc + n;
    A r = alpha * v;
    if (beta != A(0)) r += beta * to_acc(*dst);
    *dst = from_acc<T>(r);
  }
};

template <class Math, typename T, bool TA, bool TB>
void plain(const GemmParams& p, const T* A, const T* B, T* C, cudaStream_t s) {
  using Acc = typename Math::Acc;
  using OpA = std::conditional_t<TA, StridedK<T>, ContigK<T>>;
  using OpB = std::conditional_t<TB, ContigK<T>, StridedK<T>>;
  using Epi = AlphaBeta<T, Acc>;
  const OpA a{A, p.lda};
  const OpB b{B, p.ldb};
  const Epi epi{C, p.ldc, Acc(p.alpha), Acc(p.beta)};
  constexpr int vec = 16 / sizeof(T);
  auto ok = [&](const void* ptr, int64_t ld) { return ld % vec == 0 && (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; };
  if constexpr (Math::kKMajor) {
    const bool asyncA = !TA && ok(A, p.lda), asyncB = TB && ok(B, p.ldb);
    if (asyncA && asyncB) return run<Math, OpA, OpB, Epi, !TA, TB>(p.M, p.N, p.K, a, b, epi, nullptr, 1, s);
    if (asyncA) return run<Math, OpA, OpB, Epi, !TA, false>(p.M, p.N, p.K, a, b, epi, nullptr, 1, s);
    if (asyncB) return run<Math, OpA, OpB, Epi, false, TB>(p.M, p.N, p.K, a, b, epi, nullptr, 1, s);
  }
  run<Math, OpA, OpB, Epi, false, false>(p.M, p.N, p.K, a, b, epi, nullptr, 1, s);
}

template <class Math, typename T>
void plain_any(const GemmParams& p, const void* A, const void* B, void* C, cudaStream_t s) {
  const T* a = static_cast<const T*>(A);
  const T* b = static_cast<const T*>(B);
  T* c = static_cast<T*>(C);
  if (p.trans_a) {
    if (p.trans_b)
      plain<Math, T, true, true>(p, a, b, c, s);
    else
      plain<Math, T, true, false>(p, a, b, c, s);
  } else {
    if (p.trans_b)
      plain<Math, T, false, true>(p, a, b, c, s);
    else
      plain<Math, T, false, false>(p, a, b, c, s);
  }
}

// float64 instance in gemm_f64.cu only (docs/CUDA_STATIC.md, "float64").
extern template void plain_any<SimtF64, double>(const GemmParams&, const void*, const void*, void*, cudaStream_t);

}  // namespace gemm
}  // namespace dk::cuda
