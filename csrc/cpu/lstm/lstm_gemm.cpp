// The LSTM time loop's GEMMs on weights packed once per sequence (lstm_gemm.h).
#include "cpu/lstm/lstm_gemm.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>

#include "cpu/common/parallel.h"
#include "cpu/gemm/gemm_pack.h"
#include "cpu/lstm/lstm_workspace.h"

namespace dk::cpu {

// Layout of a packed operand with `panels` panels of `width` (mr or nr): K is cut into blocks
// of kc; block [p0, p0 + kc) holds all panels of that block one after another (panel i at
// i * kc * width), starting at p0 * panels * width. Any (K block, panel) is addressable directly.

template <typename T>
RecurrentGemm<T>::RecurrentGemm(bool trans, int64_t K, int64_t M, std::initializer_list<Weight> parts)
    : kr_(gemm_kernel<T>()), K_(K), M_(M) {
  if (parts.size() < 1 || parts.size() > kMaxParts) throw std::invalid_argument("RecurrentGemm: 1 or 2 parts");
  m_panels_ = (M + kr_.mr - 1) / kr_.mr;
  ap_ = lstm_workspace<T>(LstmSlot::PackA, m_panels_ * kr_.mr * K);
  const int64_t nblk = (K + kr_.kc - 1) / kr_.kc;
  const bool par = !omp_in_parallel();
  for (const Weight& w : parts) {
    const int p = parts_++;
    n_[p] = w.N;
    n_panels_[p] = (w.N + kr_.nr - 1) / kr_.nr;
    T* wp = wp_[p] = lstm_workspace<T>(p == 0 ? LstmSlot::PackW0 : LstmSlot::PackW1, n_panels_[p] * kr_.nr * K);
    const int64_t np = n_panels_[p];
#pragma omp parallel for collapse(2) schedule(static) \
    num_threads(team(par ? threads_for_bytes(2 * sizeof(T) * w.N * K) : 1))
    for (int64_t b = 0; b < nblk; ++b)
      for (int64_t j = 0; j < np; ++j) {
        const int64_t p0 = b * kr_.kc, kc = std::min(kr_.kc, K - p0);
        const int64_t j0 = j * kr_.nr, cols = std::min<int64_t>(kr_.nr, w.N - j0);
        const T* src = trans ? w.W + j0 * w.ldw + p0 : w.W + p0 * w.ldw + j0;
        pack_b(trans, kc, cols, src, w.ldw, kr_.nr, wp + p0 * np * kr_.nr + j * kc * kr_.nr, kr_.pack_t);
      }
  }
}

template <typename T>
void RecurrentGemm<T>::step(const T* A, int64_t lda, T beta, Out out0, Out out1) {
  const int mr = kr_.mr, nr = kr_.nr;
  const int64_t nblk = (K_ + kr_.kc - 1) / kr_.kc;
  const Out outs[kMaxParts] = {out0, out1};
  T* ap = ap_;
  // 1. Pack A once for all parts, shared by the threads (each packs some (K block, row panel)).
#pragma omp for collapse(2) schedule(static)
  for (int64_t b = 0; b < nblk; ++b)
    for (int64_t i = 0; i < m_panels_; ++i) {
      const int64_t p0 = b * kr_.kc, kc = std::min(kr_.kc, K_ - p0);
      const int64_t i0 = i * mr, rows = std::min<int64_t>(mr, M_ - i0);
      pack_a(false, rows, kc, A + i0 * lda + p0, lda, mr, ap + p0 * m_panels_ * mr + i * kc * mr, kr_.pack_t);
    }
  // 2. Tiles over the column panels of all parts; threads own contiguous runs of panels, so a
  // thread's W panels stay in its cache from step to step.
  const int64_t total = n_panels_[0] + (parts_ > 1 ? n_panels_[1] : 0);
#pragma omp for collapse(2) schedule(static)
  for (int64_t jg = 0; jg < total; ++jg)
    for (int64_t i = 0; i < m_panels_; ++i) {
      const int part = jg < n_panels_[0] ? 0 : 1;
      const Out& o = outs[part];
      if (o.C == nullptr) continue;
      const int64_t j = part == 0 ? jg : jg - n_panels_[0], np = n_panels_[part];
      const int64_t i0 = i * mr, j0 = j * nr;
      const int64_t rows = std::min<int64_t>(mr, M_ - i0), cols = std::min<int64_t>(nr, n_[part] - j0);
      T* c = o.C + i0 * o.ldc + j0;
      alignas(64) T edge[16 * 32];
      const bool full = rows == mr && cols == nr;
      for (int64_t b = 0; b < nblk; ++b) {
        const int64_t p0 = b * kr_.kc, kc = std::min(kr_.kc, K_ - p0);
        const T* a = ap + p0 * m_panels_ * mr + i * kc * mr;
        const T* w = wp_[part] + p0 * np * nr + j * kc * nr;
        const T bb = b == 0 ? beta : T(1);
        if (full) {
          kr_.fn(kc, a, w, c, o.ldc, T(1), bb);
        } else {
          kr_.fn(kc, a, w, edge, nr, T(1), T(0));
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t q = 0; q < cols; ++q) {
              T& out = c[r * o.ldc + q];
              out = edge[r * nr + q] + (bb == T(0) ? T(0) : bb * out);
            }
        }
      }
    }
}

template class RecurrentGemm<float>;
template class RecurrentGemm<double>;

}  // namespace dk::cpu
