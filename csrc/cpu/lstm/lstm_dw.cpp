// The LSTM weight-gradient GEMM on dgates stashed step by step in packed form (lstm_dw.h).
#include "cpu/lstm/lstm_dw.h"

#include <omp.h>

#include <algorithm>

#include "cpu/common/parallel.h"
#include "cpu/gemm/gemm_kernels.h"
#include "cpu/gemm/gemm_pack.h"
#include "cpu/lstm/lstm_workspace.h"

namespace dk::cpu {

// A micro-panel for K rows [p0, p0 + kc) is the contiguous run at panel + p0 * mr: the layout the
// micro-kernel reads (Ap[k * MR + i]) for any K blocking.
template <typename T>
LstmWeightGrad<T>::LstmWeightGrad(int64_t G, int64_t rows) : G_(G), rows_(rows) {
  mr_ = gemm_kernel<T>().mr;
  m_panels_ = (G + mr_ - 1) / mr_;
  panels_ = lstm_workspace<T>(LstmSlot::DGates, m_panels_ * mr_ * rows);
}

template <typename T>
void LstmWeightGrad<T>::stash(const T* dg_t, int64_t B, int64_t row0, T* db_acc) {
  const int mr = mr_;
#pragma omp for schedule(static) nowait
  for (int64_t i = 0; i < m_panels_; ++i) {
    const int64_t g0 = i * mr, cols = std::min<int64_t>(mr, G_ - g0);
    T* dst = panels_ + (i * rows_ + row0) * mr;
    T sum[kMaxPanel] = {};
    for (int64_t b = 0; b < B; ++b, dst += mr) {
      const T* src = dg_t + b * G_ + g0;
      if (cols == 8) {  // the common AVX-512 / AVX2-float panel: a fixed count the compiler unrolls
        for (int c = 0; c < 8; ++c) {
          dst[c] = src[c];
          sum[c] += src[c];
        }
      } else {
        int64_t c = 0;
        for (; c < cols; ++c) {
          dst[c] = src[c];
          sum[c] += src[c];
        }
        for (; c < mr; ++c) dst[c] = T(0);
      }
    }
    if (db_acc)
      for (int64_t c = 0; c < cols; ++c) db_acc[g0 + c] += sum[c];
  }
}

// Goto-style blocking as in gemm.cpp (B block kc x nc in L2, an A micro-panel in L1 across the
// column tiles), with A already packed: per (column block, K block) the threads pack B together,
// then share the tiles. Each C tile is computed by one thread over the K blocks in order, so the
// result does not depend on the team size.
template <typename T>
void LstmWeightGrad<T>::gemm(const T* xh, int64_t XH, T* dw, int64_t ldw) const {
  const GemmKernel<T>& kr = gemm_kernel<T>();
  const int mr = kr.mr, nr = kr.nr;
  const int64_t kc_max = std::min(kr.kc, rows_), nc_max = std::min(kr.nc, (XH + nr - 1) / nr * nr);
  T* bp = lstm_workspace<T>(LstmSlot::PackB, kc_max * nc_max);
  const int nt = threads_for_flops(2.0 * double(G_) * double(XH) * double(rows_));
#pragma omp parallel num_threads(nt) if (nt > 1)
  for (int64_t jc = 0; jc < XH; jc += kr.nc) {
    const int64_t nc = std::min(kr.nc, XH - jc), n_panels = (nc + nr - 1) / nr;
    for (int64_t pc = 0; pc < rows_; pc += kr.kc) {
      const int64_t kc = std::min(kr.kc, rows_ - pc);
      const T beta = pc == 0 ? T(0) : T(1);
#pragma omp for schedule(static)
      for (int64_t j = 0; j < n_panels; ++j) {
        const int64_t j0 = j * nr;
        pack_b(false, kc, std::min<int64_t>(nr, nc - j0), xh + pc * XH + jc + j0, XH, nr, bp + j * kc * nr,
               kr.pack_t);
      }
#pragma omp for collapse(2) schedule(static)
      for (int64_t i = 0; i < m_panels_; ++i)
        for (int64_t j = 0; j < n_panels; ++j) {
          const int64_t i0 = i * mr, j0 = j * nr;
          const int64_t rows = std::min<int64_t>(mr, G_ - i0), cols = std::min<int64_t>(nr, nc - j0);
          const T* a = panels_ + (i * rows_ + pc) * mr;
          T* c = dw + i0 * ldw + jc + j0;
          if (rows == mr && cols == nr) {
            kr.fn(kc, a, bp + j * kc * nr, c, ldw, T(1), beta);
          } else {
            alignas(64) T edge[16 * 32];
            kr.fn(kc, a, bp + j * kc * nr, edge, nr, T(1), T(0));
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t q = 0; q < cols; ++q) {
                T& out = c[r * ldw + q];
                out = edge[r * nr + q] + (beta == T(0) ? T(0) : out);
              }
          }
        }
    }
  }
}

template class LstmWeightGrad<float>;
template class LstmWeightGrad<double>;

}  // namespace dk::cpu
