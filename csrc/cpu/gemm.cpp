// Placeholder GEMM: simple and correct, to be replaced by the packed, register-blocked one.
#include "cpu/gemm.h"

#include <omp.h>

#include <vector>

#include "cpu/parallel.h"

namespace dk::cpu {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc, bool parallel) {
  const bool go_parallel = parallel && !omp_in_parallel();
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (go_parallel)
  for (int64_t i = 0; i < M; ++i) {
    std::vector<T> acc(N, T(0));
    for (int64_t k = 0; k < K; ++k) {
      const T a = trans_a ? A[k * lda + i] : A[i * lda + k];
      if (trans_b)
        for (int64_t j = 0; j < N; ++j) acc[j] += a * B[j * ldb + k];
      else
        for (int64_t j = 0; j < N; ++j) acc[j] += a * B[k * ldb + j];
    }
    T* c = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) c[j] = alpha * acc[j] + (beta == T(0) ? T(0) : beta * c[j]);
  }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t, bool);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t, bool);

}  // namespace dk::cpu
