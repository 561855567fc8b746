#pragma once
// The LSTM's all-steps GEMMs on the shared GEMM core (cuda/gemm/gemm_core.cuh): exact FFMA for
// float32, DFMA for float64, mma.sync m16n8k16 with float accumulation for float16. Two epilogues:
// store the accumulator (the forward's projection stays float for float16), and a column split that
// writes [dW_ih | dW_hh] straight into the two weight gradients from one GEMM.
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/numeric.cuh"
#include "cuda/gemm/gemm_core.cuh"
#include "cuda/gemm/gemm_operands.cuh"

namespace dk::cuda::lstm_gemm {

// Operand views of the core (cuda/gemm/gemm_operands.cuh).
using gemm::ContigK;
using gemm::StridedK;

template <typename TC, typename Acc>
struct Store {
  TC* c;
  int64_t ldc;
  __device__ void operator()(int64_t m, int64_t n, Acc v) const { c[m * ldc + n] = from_acc<TC>(v); }
};

// Columns n < split to c1 (row stride ldc1), the others to c2 at column n - split.
template <typename TC, typename Acc>
struct SplitCols {
  TC* c1;
  int64_t ldc1;
  TC* c2;
  int64_t ldc2, split;
  __device__ void operator()(int64_t m, int64_t n, Acc v) const {
    if (n < split)
      c1[m * ldc1 + n] = from_acc<TC>(v);
    else
      c2[m * ldc2 + (n - split)] = from_acc<TC>(v);
  }
};

template <typename T>
struct MathFor;
template <>
struct MathFor<float> {
  using type = gemm::SimtF32;
};
template <>
struct MathFor<double> {
  using type = gemm::SimtF64;
};
template <>
struct MathFor<__half> {
  using type = gemm::MmaF16;
};

template <class Op>
struct IsContig : std::false_type {};
template <typename T>
struct IsContig<ContigK<T>> : std::true_type {};

// C = op A x op B into the epilogue, staging k-contiguous, 16-byte aligned operands with cp.async
// where the tensor-core math reads them (as the plain-GEMM launcher does).
template <typename T, class OpA, class OpB, class Epi>
void run(int64_t M, int64_t N, int64_t K, const OpA& a, const OpB& b, const Epi& epi, cudaStream_t s) {
  using Math = typename MathFor<T>::type;
  constexpr int vec = 16 / sizeof(T);
  auto ok = [&](const void* p, int64_t ld) { return ld % vec == 0 && (reinterpret_cast<uintptr_t>(p) & 15) == 0; };
  if constexpr (Math::kKMajor) {
    const bool async_a = IsContig<OpA>::value && ok(a.a, a.ld), async_b = IsContig<OpB>::value && ok(b.a, b.ld);
    if constexpr (IsContig<OpA>::value && IsContig<OpB>::value)
      if (async_a && async_b) return gemm::run<Math, OpA, OpB, Epi, true, true>(M, N, K, a, b, epi, nullptr, 1, s);
    if constexpr (IsContig<OpA>::value)
      if (async_a) return gemm::run<Math, OpA, OpB, Epi, true, false>(M, N, K, a, b, epi, nullptr, 1, s);
    if constexpr (IsContig<OpB>::value)
      if (async_b) return gemm::run<Math, OpA, OpB, Epi, false, true>(M, N, K, a, b, epi, nullptr, 1, s);
  }
  gemm::run<Math, OpA, OpB, Epi, false, false>(M, N, K, a, b, epi, nullptr, 1, s);
}

}  // namespace dk::cuda::lstm_gemm
