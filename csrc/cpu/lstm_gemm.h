#pragma once
// The recurrent GEMM of an LSTM step, C[M, N] = A[M, K] * op(W) + beta * C, where the weight
// operand is the same for all T steps. dk::cpu::gemm would re-pack W (4H x H, a megabyte at
// H = 256) on every call, which costs about as much as the step's arithmetic; here W is
// packed once per sequence into the GEMM micro-kernel's panel layout (gemm_pack.h) and each
// step only packs its small A (the batch rows) and runs the micro-kernels (gemm_kernels.h).
//
// RecurrentGemm::step is written to be called by every thread of an enclosing OpenMP parallel
// region (its loops are orphaned `omp for`, each ending in a barrier); called outside a
// parallel region it simply runs on the calling thread.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "cpu/gemm_kernels.h"

namespace dk::cpu {

template <typename T>
class RecurrentGemm {
 public:
  // op(W) is K x N: W stored N x K (trans) or K x N (!trans), leading dimension ldw.
  // M is the most rows a step will have. Packs W (in parallel where threads are available).
  RecurrentGemm(bool trans, int64_t K, int64_t N, const T* W, int64_t ldw, int64_t M);

  // C = A * op(W) + beta * C for A (M x K, lda). beta == 0: C is not read.
  void step(const T* A, int64_t lda, T* C, int64_t ldc, T beta);

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  static T* alloc(std::unique_ptr<T, Free>& owner, int64_t n);

  const GemmKernel<T>& kr_;
  int64_t K_, N_, M_, n_panels_, m_panels_;
  std::unique_ptr<T, Free> wp_, ap_;  // packed W (all K blocks), packed A of the current step
};

}  // namespace dk::cpu
