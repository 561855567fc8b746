// AVX-512 micro-kernels: MR x 32 floats / MR x 16 doubles in 2*MR zmm accumulators, two B
// vectors per k and one broadcast of A at a time (of the 32 zmm registers).
// Compiled with AVX-512 flags; only called when best_isa() == Avx512. Packing reuses the
// AVX2 transposes (gemm_avx2.cpp): every AVX-512 CPU has AVX2.
#include <immintrin.h>

#include "cpu/gemm/gemm_kernels.h"

namespace dk::cpu::DK_ISA_NAMESPACE::gemm {

namespace {

// Intrinsic traits rather than simd::Ops: the vector-extension form measured ~5% slower here
// (benchmarks/results/arch.md).
struct F32 {
  using T = float;
  using V = __m512;
  static constexpr int W = 16;
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static V bcast(const T* p) { return _mm512_set1_ps(*p); }
  static V set1(T x) { return _mm512_set1_ps(x); }
  static V zero() { return _mm512_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
};
struct F64 {
  using T = double;
  using V = __m512d;
  static constexpr int W = 8;
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static V bcast(const T* p) { return _mm512_set1_pd(*p); }
  static V set1(T x) { return _mm512_set1_pd(x); }
  static V zero() { return _mm512_setzero_pd(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
};

#include "cpu/gemm/gemm_microkernel_impl.h"  // kernel<S, MR>, kernel_shifted<S, MR>

}  // namespace

template <>
GemmKernel<float> kernel_table<float>() {
  return {8,
          32,
          128,
          384,
          512,
          &kernel<F32, 8>,
          "avx512 8x32",
          &isa_avx2::gemm::pack_transposed<float>,
          &kernel_shifted<F32, 8>,
          &kernel_shifted_half<F32, 8>,
          &kernel_rows<F32, 8, 2>,
          &kernel_rows<F32, 8, 1>,
          &kernel<F32, 4>};
}
template <>
GemmKernel<double> kernel_table<double>() {
  return {8,
          16,
          128,
          256,
          384,
          &kernel<F64, 8>,
          "avx512 8x16",
          &isa_avx2::gemm::pack_transposed<double>,
          &kernel_shifted<F64, 8>,
          &kernel_shifted_half<F64, 8>,
          &kernel_rows<F64, 8, 2>,
          &kernel_rows<F64, 8, 1>,
          &kernel<F64, 4>};
}

}  // namespace dk::cpu::DK_ISA_NAMESPACE::gemm
