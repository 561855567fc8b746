#pragma once
// The library's own GEMM, reused by convolution, LSTM and attention:
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
// Row-major. op(A) = A (lda >= K) or A^T (A stored K x M, lda >= M); same for B.
// beta == 0 means C is write-only (its old contents, even NaN, are ignored).
// Runs on dk::cpu::num_threads() threads unless called from inside a parallel region,
// where it runs on the calling thread (`parallel = false` forces that).
#include <cstdint>

namespace dk::cpu {

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc, bool parallel = true);

}  // namespace dk::cpu
