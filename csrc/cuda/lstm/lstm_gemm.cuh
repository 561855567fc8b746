#pragma once
// The LSTM's all-steps GEMMs on the shared GEMM core (cuda/gemm/gemm_core.cuh): exact FFMA for
// float32, DFMA for float64, mma.sync m16n8k16 with float accumulation for float16. Two epilogues:
// store the accumulator (the forward's projection stays float for float16), and a column split that
// writes [dW_ih | dW_hh] straight into the two weight gradients from one GEMM.
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/numeric.cuh"
#include "cuda/gemm/gemm_core.cuh"

namespace dk::cuda::lstm_gemm {

// Operand views for the core (its OpA/OpB contract). gemm_plain.cuh has the same two, but that file
// also defines the plain launcher, so it cannot be included by a second translation unit.
// Element (r, k) at a[r*ld + k]: rows contiguous in k (cp.async-able).
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

// Element (r, k) at a[r + k*ld] (a transposed row-major matrix).
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
  __device__ const T* chunk(int64_t, int64_t) const { return a; }  // never staged with cp.async
};

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
