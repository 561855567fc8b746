// Portable micro-kernel (no ISA flags): plain loops over a fixed 4 x 16 / 4 x 8 tile that
// the compiler vectorises with whatever baseline SIMD the target has.
#include "cpu/gemm/gemm_kernels.h"

namespace dk::cpu::DK_ISA_NAMESPACE::gemm {

namespace {

// Shifted: B row k is Bp + offs[k]; otherwise a packed panel, row k at Bp + k*NR.
template <typename T, int MR, int NR, bool Shifted>
void kernel_impl(int64_t kc, const T* __restrict Ap, const T* __restrict Bp, const int64_t* __restrict offs,
                 T* __restrict C, int64_t ldc, T alpha, T beta) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const T* a = Ap + k * MR;
    const T* b = Shifted ? Bp + offs[k] : Bp + k * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
  }
  for (int i = 0; i < MR; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0))
      for (int j = 0; j < NR; ++j) c[j] = alpha * acc[i][j];
    else
      for (int j = 0; j < NR; ++j) c[j] = alpha * acc[i][j] + beta * c[j];
  }
}

template <typename T, int MR, int NR>
void kernel(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, T alpha, T beta) {
  kernel_impl<T, MR, NR, false>(kc, Ap, Bp, nullptr, C, ldc, alpha, beta);
}

template <typename T, int MR, int NR>
void kernel_shifted(int64_t kc, const T* Ap, const T* base, const int64_t* offs, T* C, int64_t ldc, T alpha, T beta) {
  kernel_impl<T, MR, NR, true>(kc, Ap, base, offs, C, ldc, alpha, beta);
}

// A rows by pointer, B a packed panel NR wide (see GemmRowsKernel).
template <typename T, int MR, int NR>
void kernel_rows(int64_t kc, const T* const* Ar, const T* __restrict Bp, T* __restrict C, int64_t ldc, T alpha,
                 T beta) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const T* b = Bp + k * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += Ar[i][k] * b[j];
  }
  for (int i = 0; i < MR; ++i) {
    T* c = C + i * ldc;
    for (int j = 0; j < NR; ++j) c[j] = alpha * acc[i][j] + (beta == T(0) ? T(0) : beta * c[j]);
  }
}

}  // namespace

template <typename T>
void pack_transposed(int64_t rows, int64_t kc, const T* const* src, int P, T* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* s = src[r];
    for (int64_t k = 0; k < kc; ++k) dst[k * P + r] = s[k];
  }
  for (int64_t r = rows; r < P; ++r)
    for (int64_t k = 0; k < kc; ++k) dst[k * P + r] = T(0);
}
template void pack_transposed<float>(int64_t, int64_t, const float* const*, int, float*);
template void pack_transposed<double>(int64_t, int64_t, const double* const*, int, double*);

template <>
GemmKernel<float> kernel_table<float>() {
  return {4,
          16,
          128,
          256,
          1024,
          &kernel<float, 4, 16>,
          "generic 4x16",
          &pack_transposed<float>,
          &kernel_shifted<float, 4, 16>,
          &kernel_shifted<float, 4, 8>,
          &kernel_rows<float, 4, 16>,
          &kernel_rows<float, 4, 8>,
          &kernel<float, 4, 16>};
}
template <>
GemmKernel<double> kernel_table<double>() {
  return {4,
          8,
          128,
          256,
          512,
          &kernel<double, 4, 8>,
          "generic 4x8",
          &pack_transposed<double>,
          &kernel_shifted<double, 4, 8>,
          &kernel_shifted<double, 4, 4>,
          &kernel_rows<double, 4, 8>,
          &kernel_rows<double, 4, 4>,
          &kernel<double, 4, 8>};
}

}  // namespace dk::cpu::DK_ISA_NAMESPACE::gemm
