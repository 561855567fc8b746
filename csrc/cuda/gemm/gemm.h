#pragma once
// Plain GEMM on the GPU, for any CUDA op that needs one (e.g. the LSTM's input and recurrent
// products); plain C++ so bindings compiled without nvcc can call it.
//
//   C = alpha * op(A) * op(B) + beta * C      row-major, every matrix with its own leading dimension
//   op(A) is M x K: A[m*lda + k], or A[k*lda + m] when trans_a (A stored K x M)
//   op(B) is K x N: B[k*ldb + n], or B[n*ldb + k] when trans_b (B stored N x K)
//   C is M x N: C[m*ldc + n]. beta == 0 means C is not read (NaN in C does not propagate, as BLAS).
//   dt: Float32 (exact FFMA; TF32 mma.sync m16n8k8 when tf32), Float64 (DFMA), Float16 (mma.sync
//   m16n8k16, float accumulation; alpha, beta applied in float). A, B, C device pointers of dt.
//   Runs on `stream` (a cudaStream_t as an integer); allocates nothing; throws std::invalid_argument on
//   bad sizes and std::runtime_error (naming the kernel) on a launch failure. M, N or K may be 0.
// From device code, the same GEMM is gemm_core.cuh's gemm::run with the operands in gemm_plain.cuh:
// write another epilogue functor there to fuse an element-wise tail (bias, gates) into the store.
#include <cstdint>

#include "common/dtype.h"

namespace dk::cuda {

struct GemmParams {
  int64_t M, N, K;
  int64_t lda, ldb, ldc;
  bool trans_a, trans_b;
  double alpha, beta;
};

void gemm_plain(const GemmParams& p, DType dt, bool tf32, const void* A, const void* B, void* C, uintptr_t stream);

}  // namespace dk::cuda
