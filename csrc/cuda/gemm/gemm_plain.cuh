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

namespace dk::cuda {

namespace gemm {

// A matrix read along k with stride ld: element (r, k) at a[r + k*ld] (op(A) when trans_a, op(B) when not).
template <typename T_>
struct StridedK {
  using T = T_;
  const T* a;
  int64_t ld;
  struct Row {
    const T* p;
  };
  __device__ Row row(int64_t r) const { return Row{a + r}; }
  __device__ T load(const Row& r, int64_t k) const { return r.p[k * ld]; }
  __device__ const T* chunk(int64_t, int64_t) const { return a; }  // never async
};

// Element (r, k) at a[r*ld + k].
template <typename T_>
struct ContigK {
  using T = T_;
  const T* a;
  int64_t ld;
  struct Row {
    const T* p;
  };
  __device__ Row row(int64_t r) const { return Row{a + r * ld}; }
  __device__ T load(const Row& r, int64_t k) const { return r.p[k]; }
  __device__ const T* chunk(int64_t r, int64_t k) const { return a + r * ld + k; }
};

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
    if (p.trans_b) plain<Math, T, true, true>(p, a, b, c, s);
    else plain<Math, T, true, false>(p, a, b, c, s);
  } else {
    if (p.trans_b) plain<Math, T, false, true>(p, a, b, c, s);
    else plain<Math, T, false, false>(p, a, b, c, s);
  }
}

}  // namespace gemm

void gemm_plain(const GemmParams& p, DType dt, bool tf32, const void* A, const void* B, void* C, uintptr_t stream) {
  if (p.M < 0 || p.N < 0 || p.K < 0) throw std::invalid_argument("deepkern gemm: negative size");
  const int64_t need_a = p.trans_a ? p.M : p.K, need_b = p.trans_b ? p.K : p.N;
  if ((p.M > 0 && p.K > 0 && p.lda < need_a) || (p.K > 0 && p.N > 0 && p.ldb < need_b) || (p.M > 0 && p.N > 0 && p.ldc < p.N))
    throw std::invalid_argument("deepkern gemm: a leading dimension is smaller than its row length");
  const cudaStream_t s = as_stream(stream);
  switch (dt) {
    case DType::Float32:
      if (tf32) gemm::plain_any<gemm::MmaTf32, float>(p, A, B, C, s);
      else gemm::plain_any<gemm::SimtF32, float>(p, A, B, C, s);
      break;
    case DType::Float64: gemm::plain_any<gemm::SimtF64, double>(p, A, B, C, s); break;
    case DType::Float16: gemm::plain_any<gemm::MmaF16, __half>(p, A, B, C, s); break;
    default: throw std::invalid_argument("deepkern gemm: unsupported dtype (float32, float64, float16)");
  }
}

}  // namespace dk::cuda
