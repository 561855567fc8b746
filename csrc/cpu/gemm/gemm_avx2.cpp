// AVX2 + FMA micro-kernels: 6 x 16 floats / 6 x 8 doubles = 12 ymm accumulators, two B
// vectors per k and one broadcast of A at a time (15 of the 16 ymm registers).
// Compiled with -mavx2 -mfma; only called when best_isa() >= Avx2Fma.
#include <immintrin.h>

#include "cpu/gemm/gemm_kernels.h"

namespace dk::cpu::DK_ISA_NAMESPACE::gemm {

namespace {

// Intrinsic traits rather than simd::Ops: the vector-extension form measured ~5% slower here
// (benchmarks/results/arch.md).
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

#include "cpu/gemm/gemm_microkernel_impl.h"  // kernel<S, MR>, kernel_shifted<S, MR>

// dst[k*P + r] = src[r][k0 + k] in 8x8 float blocks.
inline void transpose8x8_store(const float* const* src, int64_t k0, float* dst, int P) {
  __m256 r0 = _mm256_loadu_ps(src[0] + k0), r1 = _mm256_loadu_ps(src[1] + k0), r2 = _mm256_loadu_ps(src[2] + k0),
         r3 = _mm256_loadu_ps(src[3] + k0), r4 = _mm256_loadu_ps(src[4] + k0), r5 = _mm256_loadu_ps(src[5] + k0),
         r6 = _mm256_loadu_ps(src[6] + k0), r7 = _mm256_loadu_ps(src[7] + k0);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
         t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
         t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)),
         s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),
         s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)),
         s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)),
         s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)),
         s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2)),
         s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)),
         s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  _mm256_storeu_ps(dst + 0 * P, _mm256_permute2f128_ps(s0, s4, 0x20));
  _mm256_storeu_ps(dst + 1 * P, _mm256_permute2f128_ps(s1, s5, 0x20));
  _mm256_storeu_ps(dst + 2 * P, _mm256_permute2f128_ps(s2, s6, 0x20));
  _mm256_storeu_ps(dst + 3 * P, _mm256_permute2f128_ps(s3, s7, 0x20));
  _mm256_storeu_ps(dst + 4 * P, _mm256_permute2f128_ps(s0, s4, 0x31));
  _mm256_storeu_ps(dst + 5 * P, _mm256_permute2f128_ps(s1, s5, 0x31));
  _mm256_storeu_ps(dst + 6 * P, _mm256_permute2f128_ps(s2, s6, 0x31));
  _mm256_storeu_ps(dst + 7 * P, _mm256_permute2f128_ps(s3, s7, 0x31));
}

// dst[k*P + r] = src[r][k0 + k] in 4x4 double blocks.
inline void transpose4x4_store(const double* const* src, int64_t k0, double* dst, int P) {
  __m256d r0 = _mm256_loadu_pd(src[0] + k0), r1 = _mm256_loadu_pd(src[1] + k0), r2 = _mm256_loadu_pd(src[2] + k0),
          r3 = _mm256_loadu_pd(src[3] + k0);
  __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1), t2 = _mm256_unpacklo_pd(r2, r3),
          t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(dst + 0 * P, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(dst + 1 * P, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(dst + 2 * P, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(dst + 3 * P, _mm256_permute2f128_pd(t1, t3, 0x31));
}

template <typename T, int B>
void pack_t_blocks(int64_t rows, int64_t kc, const T* const* src, int P, T* dst) {
  if (P % B != 0) {  // e.g. the 6-row AVX2 panel: no whole register blocks
    isa_generic::gemm::pack_transposed(rows, kc, src, P, dst);
    return;
  }
  const int64_t full_rows = rows / B * B, full_k = kc / B * B;
  for (int64_t r0 = 0; r0 < full_rows; r0 += B) {
    for (int64_t k0 = 0; k0 < full_k; k0 += B) {
      if constexpr (B == 8)
        transpose8x8_store(src + r0, k0, dst + k0 * P + r0, P);
      else
        transpose4x4_store(src + r0, k0, dst + k0 * P + r0, P);
    }
    for (int64_t r = r0; r < r0 + B; ++r)
      for (int64_t k = full_k; k < kc; ++k) dst[k * P + r] = src[r][k];
  }
  for (int64_t r = full_rows; r < rows; ++r)
    for (int64_t k = 0; k < kc; ++k) dst[k * P + r] = src[r][k];
  for (int64_t r = rows; r < P; ++r)
    for (int64_t k = 0; k < kc; ++k) dst[k * P + r] = T(0);
}

}  // namespace

template <>
void pack_transposed<float>(int64_t rows, int64_t kc, const float* const* src, int P, float* dst) {
  pack_t_blocks<float, 8>(rows, kc, src, P, dst);
}
template <>
void pack_transposed<double>(int64_t rows, int64_t kc, const double* const* src, int P, double* dst) {
  pack_t_blocks<double, 4>(rows, kc, src, P, dst);
}

template <>
GemmKernel<float> kernel_table<float>() {
  return {6,
          16,
          144,
          384,
          512,
          &kernel<F32, 6>,
          "avx2 6x16",
          &pack_transposed<float>,
          &kernel_shifted<F32, 6>,
          &kernel_shifted_half<F32, 6>,
          &kernel_rows<F32, 6, 2>,
          &kernel_rows<F32, 6, 1>,
          &kernel<F32, 4>};
}
template <>
GemmKernel<double> kernel_table<double>() {
  return {6,
          8,
          144,
          256,
          384,
          &kernel<F64, 6>,
          "avx2 6x8",
          &pack_transposed<double>,
          &kernel_shifted<F64, 6>,
          &kernel_shifted_half<F64, 6>,
          &kernel_rows<F64, 6, 2>,
          &kernel_rows<F64, 6, 1>,
          &kernel<F64, 4>};
}

}  // namespace dk::cpu::DK_ISA_NAMESPACE::gemm
