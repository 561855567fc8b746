// AVX-512 micro-kernels: MR x 32 floats / MR x 16 doubles in 2*MR zmm accumulators, two B
// vectors per k and one broadcast of A at a time (of the 32 zmm registers).
// Compiled with AVX-512 flags; only called when best_isa() == Avx512. Packing reuses the
// AVX2 transposes (gemm_avx2.cpp): every AVX-512 CPU has AVX2.
#include <immintrin.h>

#include "cpu/gemm_kernels.h"

namespace dk::cpu {

namespace {

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

// Shifted: B row k is Bp + offs[k] (a shifted-GEMM convolution reads the padded input
// directly); otherwise B is a packed panel, row k at Bp + k*NR.
template <typename S, int MR, bool Shifted>
void kernel_impl(int64_t kc, const typename S::T* __restrict Ap, const typename S::T* __restrict Bp,
                 const int64_t* __restrict offs, typename S::T* __restrict C, int64_t ldc, typename S::T alpha,
                 typename S::T beta) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int W = S::W, NR = 2 * W;
  V c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = S::zero();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const typename S::T* b = Shifted ? Bp + offs[k] : Bp;
    const V b0 = S::load(b), b1 = S::load(b + W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V a = S::bcast(Ap + i);
      c0[i] = S::fma(a, b0, c0[i]);
      c1[i] = S::fma(a, b1, c1[i]);
    }
    Ap += MR;
    if (!Shifted) Bp += NR;
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

template <typename S, int MR>
void kernel(int64_t kc, const typename S::T* Ap, const typename S::T* Bp, typename S::T* C, int64_t ldc,
            typename S::T alpha, typename S::T beta) {
  kernel_impl<S, MR, false>(kc, Ap, Bp, nullptr, C, ldc, alpha, beta);
}

template <typename S, int MR>
void kernel_shifted(int64_t kc, const typename S::T* Ap, const typename S::T* base, const int64_t* offs,
                    typename S::T* C, int64_t ldc, typename S::T alpha, typename S::T beta) {
  kernel_impl<S, MR, true>(kc, Ap, base, offs, C, ldc, alpha, beta);
}

}  // namespace

template <>
GemmKernel<float> gemm_kernel_avx512<float>() {
  return {8, 32, 128, 384, 512, &kernel<F32, 8>, "avx512 8x32", &pack_transposed_avx2<float>, &kernel_shifted<F32, 8>};
}
template <>
GemmKernel<double> gemm_kernel_avx512<double>() {
  return {8, 16, 128, 256, 384, &kernel<F64, 8>, "avx512 8x16", &pack_transposed_avx2<double>, &kernel_shifted<F64, 8>};
}

}  // namespace dk::cpu
