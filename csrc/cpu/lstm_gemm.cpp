#include "cpu/lstm_gemm.h"

#include <omp.h>

#include <algorithm>
#include <new>

#include "cpu/gemm_pack.h"
#include "cpu/parallel.h"

namespace dk::cpu {

// Layout of both packed operands: K is cut into blocks of kc; block [p0, p0 + kc) holds all
// panels of that block one after another (panel i at i * kc * width), starting at
// p0 * panels * width. So any (K block, panel) is addressable without a table.

template <typename T>
T* RecurrentGemm<T>::alloc(std::unique_ptr<T, Free>& owner, int64_t n) {
  const size_t bytes = (sizeof(T) * static_cast<size_t>(std::max<int64_t>(n, 1)) + 63) / 64 * 64;
  owner.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
  if (!owner) throw std::bad_alloc();
  return owner.get();
}

template <typename T>
RecurrentGemm<T>::RecurrentGemm(bool trans, int64_t K, int64_t N, const T* W, int64_t ldw, int64_t M)
    : kr_(gemm_kernel<T>()), K_(K), N_(N), M_(M) {
  n_panels_ = (N + kr_.nr - 1) / kr_.nr;
  m_panels_ = (M + kr_.mr - 1) / kr_.mr;
  T* wp = alloc(wp_, n_panels_ * kr_.nr * K);
  alloc(ap_, m_panels_ * kr_.mr * K);
  const int64_t nblk = (K + kr_.kc - 1) / kr_.kc;
  const bool par = !omp_in_parallel() && n_panels_ * K >= 4096;
#pragma omp parallel for collapse(2) schedule(static) num_threads(num_threads()) if (par)
  for (int64_t b = 0; b < nblk; ++b)
    for (int64_t j = 0; j < n_panels_; ++j) {
      const int64_t p0 = b * kr_.kc, kc = std::min(kr_.kc, K - p0);
      const int64_t j0 = j * kr_.nr, cols = std::min<int64_t>(kr_.nr, N - j0);
      const T* src = trans ? W + j0 * ldw + p0 : W + p0 * ldw + j0;
      pack_b(trans, kc, cols, src, ldw, kr_.nr, wp + p0 * n_panels_ * kr_.nr + j * kc * kr_.nr);
    }
}

template <typename T>
void RecurrentGemm<T>::step(const T* A, int64_t lda, T* C, int64_t ldc, T beta) {
  const int mr = kr_.mr, nr = kr_.nr;
  const int64_t nblk = (K_ + kr_.kc - 1) / kr_.kc;
  T* ap = ap_.get();
  const T* wp = wp_.get();
  // 1. Pack A, shared by all threads (each packs some (K block, row panel) pairs).
#pragma omp for collapse(2) schedule(static)
  for (int64_t b = 0; b < nblk; ++b)
    for (int64_t i = 0; i < m_panels_; ++i) {
      const int64_t p0 = b * kr_.kc, kc = std::min(kr_.kc, K_ - p0);
      const int64_t i0 = i * mr, rows = std::min<int64_t>(mr, M_ - i0);
      pack_a(false, rows, kc, A + i0 * lda + p0, lda, mr, ap + p0 * m_panels_ * mr + i * kc * mr);
    }
  // 2. Tiles: threads own contiguous runs of column panels (W panels stay in their cache).
#pragma omp for collapse(2) schedule(static)
  for (int64_t j = 0; j < n_panels_; ++j)
    for (int64_t i = 0; i < m_panels_; ++i) {
      const int64_t i0 = i * mr, j0 = j * nr;
      const int64_t rows = std::min<int64_t>(mr, M_ - i0), cols = std::min<int64_t>(nr, N_ - j0);
      T* c = C + i0 * ldc + j0;
      alignas(64) T edge[16 * 32];
      const bool full = rows == mr && cols == nr;
      for (int64_t b = 0; b < nblk; ++b) {
        const int64_t p0 = b * kr_.kc, kc = std::min(kr_.kc, K_ - p0);
        const T* a = ap + p0 * m_panels_ * mr + i * kc * mr;
        const T* w = wp + p0 * n_panels_ * nr + j * kc * nr;
        const T bb = b == 0 ? beta : T(1);
        if (full) {
          kr_.fn(kc, a, w, c, ldc, T(1), bb);
        } else {
          kr_.fn(kc, a, w, edge, nr, T(1), T(0));
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t q = 0; q < cols; ++q) {
              T& out = c[r * ldc + q];
              out = edge[r * nr + q] + (bb == T(0) ? T(0) : bb * out);
            }
        }
      }
    }
}

template class RecurrentGemm<float>;
template class RecurrentGemm<double>;

}  // namespace dk::cpu
