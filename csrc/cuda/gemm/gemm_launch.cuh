#pragma once
// The plain-GEMM entry point declared in gemm.h: element type and math chosen once. Included by gemm.cu only.
#include "cuda/gemm/gemm_plain.cuh"

namespace dk::cuda {

void gemm_plain(const GemmParams& p, DType dt, bool tf32, const void* A, const void* B, void* C, uintptr_t stream) {
  if (p.M < 0 || p.N < 0 || p.K < 0) throw std::invalid_argument("deepkern gemm: negative size");
  const int64_t need_a = p.trans_a ? p.M : p.K, need_b = p.trans_b ? p.K : p.N;
  if ((p.M > 0 && p.K > 0 && p.lda < need_a) || (p.K > 0 && p.N > 0 && p.ldb < need_b) ||
      (p.M > 0 && p.N > 0 && p.ldc < p.N))
    throw std::invalid_argument("deepkern gemm: a leading dimension is smaller than its row length");
  const cudaStream_t s = as_stream(stream);
  switch (dt) {
    case DType::Float32:
      if (tf32)
        gemm::plain_any<gemm::MmaTf32, float>(p, A, B, C, s);
      else
        gemm::plain_any<gemm::SimtF32, float>(p, A, B, C, s);
      break;
    case DType::Float64: gemm::plain_any<gemm::SimtF64, double>(p, A, B, C, s); break;
    case DType::Float16: gemm::plain_any<gemm::MmaF16, __half>(p, A, B, C, s); break;
    default: throw std::invalid_argument("deepkern gemm: unsupported dtype (float32, float64, float16)");
  }
}

}  // namespace dk::cuda
