// Portable micro-kernel (no ISA flags): plain loops over a fixed 4 x 16 / 4 x 8 tile that
// the compiler vectorises with whatever baseline SIMD the target has.
#include "cpu/gemm_kernels.h"

namespace dk::cpu {

namespace {

template <typename T, int MR, int NR>
void kernel(int64_t kc, const T* __restrict Ap, const T* __restrict Bp, T* __restrict C, int64_t ldc, T alpha,
            T beta) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const T* a = Ap + k * MR;
    const T* b = Bp + k * NR;
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

}  // namespace

template <>
GemmKernel<float> gemm_kernel_generic<float>() {
  return {4, 16, 128, 256, 1024, &kernel<float, 4, 16>, "generic 4x16"};
}
template <>
GemmKernel<double> gemm_kernel_generic<double>() {
  return {4, 8, 128, 256, 512, &kernel<double, 4, 8>, "generic 4x8"};
}

}  // namespace dk::cpu
