#pragma once
// The LSTM backward's weight gradient [dW_ih | dW_hh] = dgates^T [X | H_prev] (G x XH, K = T*B rows).
// dgates^T is the GEMM's A operand, which dk::cpu::gemm would pack with a transposing gather from
// the whole (T*B x G) dgates in memory; here each step's dgates_t (B x G, still in cache after the
// pointwise step) is copied straight into A's packed panel layout, and the column sums that make
// db are taken in the same pass. After the time loop one GEMM runs on the stashed panels.
#include <cstdint>

namespace dk::cpu {

template <typename T>
class LstmWeightGrad {
 public:
  // Panels for G columns and K = rows (T*B) in the calling thread's LSTM workspace.
  LstmWeightGrad(int64_t G, int64_t rows);

  // Stash dgates_t (B x G, leading dimension G) as rows [row0, row0 + B) of dgates; db_acc[g] +=
  // the column sums (db_acc may be nullptr). An orphaned `omp for nowait` over the panels, so every
  // column is owned by one thread and summed in the same order for any team size; the caller
  // must reach a barrier before it overwrites dg_t or reads db_acc.
  void stash(const T* dg_t, int64_t B, int64_t row0, T* db_acc);

  // dw (G x XH, leading dimension ldw) = dgates^T xh for xh (rows x XH, leading dimension XH).
  // Starts its own parallel region (not to be called inside one).
  void gemm(const T* xh, int64_t XH, T* dw, int64_t ldw) const;

 private:
  int64_t G_, rows_, m_panels_;
  int mr_;
  T* panels_;  // panel i (columns [i*mr, i*mr + mr)): rows_ x mr values at panels_ + i * rows_ * mr
};

}  // namespace dk::cpu
