// AVX2 + FMA micro-kernels: 6 x 16 floats / 6 x 8 doubles = 12 ymm accumulators, two B
// vectors per k and one broadcast of A at a time (15 of the 16 ymm registers).
// Compiled with -mavx2 -mfma; only called when best_isa() >= Avx2Fma.
#include <immintrin.h>

#include "cpu/gemm_kernels.h"

namespace dk::cpu {

namespace {

struct F32 {
  using T = float;
  using V = __m256;
  static constexpr int W = 8;
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static V bcast(const T* p) { return _mm256_broadcast_ss(p); }
  static V set1(T x) { return _mm256_set1_ps(x); }
  static V zero() { return _mm256_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
};
struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr int W = 4;
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static V bcast(const T* p) { return _mm256_broadcast_sd(p); }
  static V set1(T x) { return _mm256_set1_pd(x); }
  static V zero() { return _mm256_setzero_pd(); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
};

template <typename S, int MR>
void kernel(int64_t kc, const typename S::T* __restrict Ap, const typename S::T* __restrict Bp,
            typename S::T* __restrict C, int64_t ldc, typename S::T alpha, typename S::T beta) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int W = S::W, NR = 2 * W;
  V c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = S::zero();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const V b0 = S::load(Bp), b1 = S::load(Bp + W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V a = S::bcast(Ap + i);
      c0[i] = S::fma(a, b0, c0[i]);
      c1[i] = S::fma(a, b1, c1[i]);
    }
    Ap += MR;
    Bp += NR;
  }
  const V va = S::set1(alpha);
  if (beta == T(0)) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      S::store(C + i * ldc, S::mul(va, c0[i]));
      S::store(C + i * ldc + W, S::mul(va, c1[i]));
    }
  } else {
    const V vb = S::set1(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      T* c = C + i * ldc;
      S::store(c, S::fma(va, c0[i], S::mul(vb, S::load(c))));
      S::store(c + W, S::fma(va, c1[i], S::mul(vb, S::load(c + W))));
    }
  }
}

}  // namespace

template <>
GemmKernel<float> gemm_kernel_avx2<float>() {
  return {6, 16, 144, 384, 512, &kernel<F32, 6>, "avx2 6x16"};
}
template <>
GemmKernel<double> gemm_kernel_avx2<double>() {
  return {6, 8, 144, 256, 384, &kernel<F64, 6>, "avx2 6x8"};
}

}  // namespace dk::cpu
