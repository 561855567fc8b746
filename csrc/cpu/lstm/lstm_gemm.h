#pragma once
// The GEMMs inside an LSTM's time loop: C_p[M, N_p] = A[M, K] * op(W_p) + beta * C_p, where the
// weights W_p are the same for all T steps and one packed A serves every part p. (Forward:
// gates += h W_hh^T. Backward: dx_t = dgates_t W_ih and dh = dgates_t W_hh, sharing dgates_t.)
// dk::cpu::gemm would re-pack each W (a megabyte at H = 256) and A on every call, which costs
// about as much as a step's arithmetic; here every W is packed once per sequence into the GEMM
// micro-kernel's panel layout (gemm_pack.h) and each step packs its small A once and runs the
// micro-kernels (gemm_kernels.h).
//
// step() is written to be called by every thread of an enclosing OpenMP parallel region (its
// loops are orphaned `omp for`, each ending in a barrier); outside a parallel region it runs on
// the calling thread.
#include <cstdint>
#include <initializer_list>

#include "cpu/gemm/gemm_kernels.h"

namespace dk::cpu {

template <typename T>
class RecurrentGemm {
 public:
  static constexpr int kMaxParts = 2;
  struct Weight {
    const T* W;  // op(W) is K x N: stored N x K (trans) or K x N (!trans)
    int64_t ldw, N;
  };
  struct Out {
    T* C;  // nullptr: skip this part in this step
    int64_t ldc;
  };

  // M is the number of rows of A (the batch); `threads` the threads that will split its row
  // panels between them (tiles_rows), which picks the panel height (panel_rows). Packs every W
  // (in parallel when not already inside a parallel region).
  RecurrentGemm(bool trans, int64_t K, int64_t M, std::initializer_list<Weight> parts, int threads = 1);

  // C_p = A * op(W_p) + beta * C_p for A (M x K, lda); beta == 0: C_p is not read.
  void step(const T* A, int64_t lda, T beta, Out out0, Out out1 = {nullptr, 0});

  // step() in two halves, for callers that produce A a row panel at a time (the time loops pack
  // each panel of the next step's A right after computing its rows, while they are in cache, and
  // save the barrier between packing and the tiles): pack_panel packs rows [i * mr, i * mr + mr)
  // of A (all K; one thread, no worksharing); tiles() then runs the tiles on the packed A.
  void pack_panel(const T* A, int64_t lda, int64_t i);
  void tiles(T beta, Out out0, Out out1 = {nullptr, 0});
  // The tiles of row panels [i0, i1) only (all columns), on the calling thread: no worksharing,
  // no barrier. Rows of an LSTM step depend on the same rows of the step before only, so a
  // thread that owns some row panels can run them through every step on its own.
  void tiles_rows(int64_t i0, int64_t i1, T beta, Out out0, Out out1 = {nullptr, 0});
  int64_t m_panels() const { return m_panels_; }
  int mr() const { return mr_; }

 private:
  void tile(int64_t b, int64_t jg, int64_t i, T beta, const Out* outs);

  const GemmKernel<T>& kr_;
  int64_t kc_, nblk_;      // K block of the packed operands (rec_kc) and the number of blocks
  int mr_;                 // rows per A panel: kr_.mr, or 4 (panel_rows)
  GemmMicroKernel<T> fn_;  // the micro-kernel for mr_ rows
  int64_t K_, M_, m_panels_;
  int parts_ = 0;
  int64_t n_[kMaxParts] = {}, n_panels_[kMaxParts] = {};
  // Packed W_p (all K blocks) and the packed A of the current step, in the constructing
  // thread's LSTM workspace (lstm_workspace.h): one RecurrentGemm per thread at a time.
  T* wp_[kMaxParts] = {};
  T* ap_ = nullptr;
};

// The backward's weight and bias gradients over all T*B rows, from dgates (TB x G, G = 4H) and
// xh (TB x (I + H), row r = [x_r, h entering that step]):
//   [dw_ih | dw_hh] = dgates^T xh  (written straight into dw_ih (G x I) and dw_hh (G x H)),
//   db = column sums of dgates (skipped when db is nullptr).
// A packed GEMM like dk::cpu::gemm's (same micro-kernel, same K blocks) with three LSTM-specific
// changes: no G x (I + H) buffer to split afterwards, db summed while dgates^T is packed (every
// element passes through registers there anyway), and the strided rows of dgates that the
// transposing pack reads, and the C tiles that each K block re-reads, prefetched ahead.
// Threads own contiguous runs of gate rows; every value is summed in the same order whatever the
// team size (K blocks in order; db over k in order).
template <typename T>
void lstm_weight_grad(int64_t TB, int64_t G, int64_t I, int64_t H, const T* dgates, const T* xh, T* dw_ih, T* dw_hh,
                      T* db);

}  // namespace dk::cpu
