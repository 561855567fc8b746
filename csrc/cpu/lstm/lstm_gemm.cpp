// The LSTM time loop's GEMMs on weights packed once per sequence (lstm_gemm.h).
#include "cpu/lstm/lstm_gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "cpu/common/parallel.h"
#include "cpu/gemm/gemm_pack.h"
#include "cpu/lstm/lstm_workspace.h"

namespace dk::cpu {

// Layout of a packed operand with `panels` panels of `width` (mr or nr): K is cut into blocks
// of kc; block [p0, p0 + kc) holds all panels of that block one after another (panel i at
// i * kc * width), starting at p0 * panels * width. Any (K block, panel) is addressable directly.

namespace {

// Rows per panel of A: the kernel's MR, or 4 where 4-row panels let the threads split the rows
// between them evenly (RecurrentGemm::tiles_rows) and MR-row ones do not, or do with more padded
// rows for each thread (M = 8 on 2 threads: 6 + 2 against 4 + 4; M = 32: 3 x 6 against 4 x 4).
// An uneven MR split keeps the time loop's per-step split by columns, whose costs (two barriers,
// gates read across cores: tens of microseconds a step) matter only on short steps (M = 16 on
// 2 threads: 3 panels of 6 rows, 2 + 2 of 4); on long ones the 4-row kernel's extra loads of W
// cost as much (2 threads, Zen 3: T32 B64 I=H=512 fwd+bwd 2-6% slower split by 4-row panels).
// Every output element is the same sum over k in the same order whatever the panel height, so
// the choice, which depends on the thread count, does not change a bit of the result.
constexpr double kShortStep = 3.2e7;  // FLOPs of one step's GEMM: about half a millisecond of a core

int panel_rows(int mr, int64_t M, int64_t K, int64_t N, int threads) {
  if (threads <= 1 || mr == 4) return mr;
  const auto panels = [&](int r) { return (M + r - 1) / r; };
  if (panels(4) % threads != 0) return mr;
  if (panels(mr) % threads == 0) return panels(4) / threads * 4 < panels(mr) / threads * mr ? 4 : mr;
  return 2.0 * double(M) * double(K) * double(N) < kShortStep ? 4 : mr;
}

// K block of the packed weights: the kernel's kc, capped so one W panel's block (kc x nr) takes
// at most 32 KiB and stays in L1 while the tiles below it (all row panels of that column panel)
// stream their A blocks past it: the loops run K block, column panel, row panel. With the
// AVX-512 kernel's 32 float columns, kc = 384 made a 48 KiB block that filled the 48 KiB L1 by
// itself, and each tile re-read its W panel from L2 (T32 B64 I=H=512: the recurrent GEMM ran at
// ~65% of the GEMM rate). AVX2's 16 columns keep kc (24 KiB).
int64_t rec_kc(int64_t kc, int nr, size_t elem) { return std::min<int64_t>(kc, 32768 / (int64_t(nr) * elem)); }

}  // namespace

template <typename T>
RecurrentGemm<T>::RecurrentGemm(bool trans, int64_t K, int64_t M, std::initializer_list<Weight> parts, int threads)
    : kr_(gemm_kernel<T>()), kc_(rec_kc(kr_.kc, kr_.nr, sizeof(T))), nblk_((K + kc_ - 1) / kc_), K_(K), M_(M) {
  if (parts.size() < 1 || parts.size() > kMaxParts) throw std::invalid_argument("RecurrentGemm: 1 or 2 parts");
  int64_t n_all = 0;
  for (const Weight& w : parts) n_all += w.N;
  mr_ = panel_rows(kr_.mr, M, K, n_all, threads);
  fn_ = mr_ == kr_.mr ? kr_.fn : kr_.fn_mr4;
  m_panels_ = (M + mr_ - 1) / mr_;
  ap_ = lstm_workspace<T>(LstmSlot::PackA, m_panels_ * mr_ * K);
  const bool par = !omp_in_parallel();
  for (const Weight& w : parts) {
    const int p = parts_++;
    n_[p] = w.N;
    n_panels_[p] = (w.N + kr_.nr - 1) / kr_.nr;
    T* wp = wp_[p] = lstm_workspace<T>(p == 0 ? LstmSlot::PackW0 : LstmSlot::PackW1, n_panels_[p] * kr_.nr * K);
    const int64_t np = n_panels_[p];
#pragma omp parallel for collapse(2) schedule(static) \
    num_threads(team(par ? threads_for_bytes(2 * sizeof(T) * w.N * K) : 1))
    for (int64_t b = 0; b < nblk_; ++b)
      for (int64_t j = 0; j < np; ++j) {
        const int64_t p0 = b * kc_, kc = std::min(kc_, K - p0);
        const int64_t j0 = j * kr_.nr, cols = std::min<int64_t>(kr_.nr, w.N - j0);
        const T* src = trans ? w.W + j0 * w.ldw + p0 : w.W + p0 * w.ldw + j0;
        pack_b(trans, kc, cols, src, w.ldw, kr_.nr, wp + p0 * np * kr_.nr + j * kc * kr_.nr, kr_.pack_t);
      }
  }
}

template <typename T>
void RecurrentGemm<T>::step(const T* A, int64_t lda, T beta, Out out0, Out out1) {
  const int mr = mr_;
  // 1. Pack A once for all parts, shared by the threads (each packs some (K block, row panel)).
#pragma omp for collapse(2) schedule(static)
  for (int64_t b = 0; b < nblk_; ++b)
    for (int64_t i = 0; i < m_panels_; ++i) {
      const int64_t p0 = b * kc_, kc = std::min(kc_, K_ - p0);
      const int64_t i0 = i * mr, rows = std::min<int64_t>(mr, M_ - i0);
      pack_a(false, rows, kc, A + i0 * lda + p0, lda, mr, ap_ + p0 * m_panels_ * mr + i * kc * mr, kr_.pack_t);
    }
  tiles(beta, out0, out1);
}

template <typename T>
void RecurrentGemm<T>::pack_panel(const T* A, int64_t lda, int64_t i) {
  const int mr = mr_;
  const int64_t i0 = i * mr, rows = std::min<int64_t>(mr, M_ - i0);
  for (int64_t p0 = 0; p0 < K_; p0 += kc_) {
    const int64_t kc = std::min(kc_, K_ - p0);
    pack_a(false, rows, kc, A + i0 * lda + p0, lda, mr, ap_ + p0 * m_panels_ * mr + i * kc * mr, kr_.pack_t);
  }
}

template <typename T>
void RecurrentGemm<T>::tiles(T beta, Out out0, Out out1) {
  const Out outs[kMaxParts] = {out0, out1};
  // Tiles over the column panels of all parts; threads own contiguous runs of (column panel,
  // row panel) tiles, the same run in every K block (so no barrier between blocks: a thread
  // re-reads only C tiles it wrote), and a thread's W panels stay in its cache from step to step.
  const int64_t total = n_panels_[0] + (parts_ > 1 ? n_panels_[1] : 0), n = total * m_panels_;
  const int th = omp_get_thread_num(), nth = omp_get_num_threads();
  const int64_t q0 = n * th / nth, q1 = n * (th + 1) / nth;
  for (int64_t b = 0; b < nblk_; ++b)
    for (int64_t q = q0; q < q1; ++q) tile(b, q / m_panels_, q % m_panels_, beta, outs);
#pragma omp barrier
}

template <typename T>
void RecurrentGemm<T>::tiles_rows(int64_t i0, int64_t i1, T beta, Out out0, Out out1) {
  const Out outs[kMaxParts] = {out0, out1};
  const int64_t total = n_panels_[0] + (parts_ > 1 ? n_panels_[1] : 0);
  for (int64_t b = 0; b < nblk_; ++b)
    for (int64_t jg = 0; jg < total; ++jg)
      for (int64_t i = i0; i < i1; ++i) tile(b, jg, i, beta, outs);
}

// K block b of one mr x nr tile of C: row panel i, column panel jg counted over all parts
// (block 0 applies beta; later blocks add to C).
template <typename T>
void RecurrentGemm<T>::tile(int64_t b, int64_t jg, int64_t i, T beta, const Out* outs) {
  const int mr = mr_, nr = kr_.nr;
  const int part = jg < n_panels_[0] ? 0 : 1;
  const Out& o = outs[part];
  if (o.C == nullptr) return;
  const int64_t j = part == 0 ? jg : jg - n_panels_[0], np = n_panels_[part];
  const int64_t i0 = i * mr, j0 = j * nr;
  const int64_t rows = std::min<int64_t>(mr, M_ - i0), cols = std::min<int64_t>(nr, n_[part] - j0);
  T* c = o.C + i0 * o.ldc + j0;
  const int64_t p0 = b * kc_, kc = std::min(kc_, K_ - p0);
  const T* a = ap_ + p0 * m_panels_ * mr + i * kc * mr;
  const T* w = wp_[part] + p0 * np * nr + j * kc * nr;
  const T bb = b == 0 ? beta : T(1);
  if (rows == mr && cols == nr) {
    fn_(kc, a, w, c, o.ldc, T(1), bb);
  } else {
    alignas(64) T edge[16 * 32];
    fn_(kc, a, w, edge, nr, T(1), T(0));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t q = 0; q < cols; ++q) {
        T& out = c[r * o.ldc + q];
        out = edge[r * nr + q] + (bb == T(0) ? T(0) : bb * out);
      }
  }
}

template class RecurrentGemm<float>;
template class RecurrentGemm<double>;

namespace {

// Rows [0, kc) of dgates from column ic on (src = dgates + pc * G + ic) as mc columns of op(A) =
// dgates^T: panels of MR gate rows, k-major (gemm_pack.h's layout). Walks dgates row by row, so
// each row's mc values are read contiguously (the rows are G values apart: 4 KiB at H = 256, a
// stride the hardware prefetchers do not follow, hence the software prefetch kAhead rows on;
// rows_left rows exist from src on).
// db (when not nullptr, pointing at column ic) gets each row added, in row order.
constexpr int64_t kAhead = 8;

template <typename T, int MR>
void pack_dgates_t(int64_t mc, int64_t kc, const T* src, int64_t G, int64_t rows_left, T* Ap, T* db) {
  const int64_t full = mc / MR, rest = mc % MR;
  for (int64_t k = 0; k < kc; ++k) {
    const T* s = src + k * G;
    if (k + kAhead < rows_left) {
      const char* pf = reinterpret_cast<const char*>(s + kAhead * G);
      for (int64_t l = 0; l < mc * int64_t(sizeof(T)); l += 64) __builtin_prefetch(pf + l);
    }
    T* d = Ap + k * MR;
    for (int64_t p = 0; p < full; ++p) std::memcpy(d + p * kc * MR, s + p * MR, sizeof(T) * MR);
    if (rest) {
      T* dr = d + full * kc * MR;
      for (int64_t i = 0; i < MR; ++i) dr[i] = i < rest ? s[full * MR + i] : T(0);
    }
    if (db)
      for (int64_t i = 0; i < mc; ++i) db[i] += s[i];
  }
}

template <typename T>
void pack_dgates_t(int mr, int64_t mc, int64_t kc, const T* src, int64_t G, int64_t rows_left, T* Ap, T* db) {
  switch (mr) {
    case 8: return pack_dgates_t<T, 8>(mc, kc, src, G, rows_left, Ap, db);
    case 6: return pack_dgates_t<T, 6>(mc, kc, src, G, rows_left, Ap, db);
    default: return pack_dgates_t<T, 4>(mc, kc, src, G, rows_left, Ap, db);
  }
}

}  // namespace

template <typename T>
void lstm_weight_grad(int64_t TB, int64_t G, int64_t I, int64_t H, const T* dgates, const T* xh, T* dw_ih, T* dw_hh,
                      T* db) {
  const GemmKernel<T>& kr = gemm_kernel<T>();
  const int mr = kr.mr, nr = kr.nr;
  const int64_t N = I + H, m_panels = (G + mr - 1) / mr;
  if (mr != 8 && mr != 6 && mr != 4) throw std::logic_error("lstm_weight_grad: unexpected micro-kernel MR");
  // Slots own contiguous runs of whole row panels; a slot's rows are computed alone.
  const int slots =
      static_cast<int>(std::min<int64_t>(m_panels, threads_for_flops(2.0 * double(G) * double(N) * double(TB))));
  // C (column n of the [dw_ih | dw_hh] row m): where it lives.
  auto c_at = [&](int64_t m, int64_t n) { return n < I ? dw_ih + m * I + n : dw_hh + m * H + (n - I); };
#pragma omp parallel num_threads(team(slots)) if (slots > 1)
  for (int s = omp_get_thread_num(); s < slots; s += omp_get_num_threads()) {
    const int64_t m0 = std::min<int64_t>(G, m_panels * s / slots * mr);
    const int64_t m1 = std::min<int64_t>(G, m_panels * (s + 1) / slots * mr);
    if (m1 <= m0) continue;
    const int64_t kc_max = std::min(kr.kc, TB), mc_max = std::min(kr.mc, (m1 - m0 + mr - 1) / mr * mr);
    const int64_t nc_max = std::min(kr.nc, (N + nr - 1) / nr * nr);
    T* Ap = lstm_workspace<T>(LstmSlot::PackA, mc_max * kc_max);
    T* Bp = lstm_workspace<T>(LstmSlot::PackW0, nc_max * kc_max);
    alignas(64) T edge[16 * 32];
    if (db)
      for (int64_t m = m0; m < m1; ++m) db[m] = T(0);
    for (int64_t jc = 0; jc < N; jc += kr.nc) {
      const int64_t nc = std::min(kr.nc, N - jc);
      for (int64_t pc = 0; pc < TB; pc += kr.kc) {
        const int64_t kc = std::min(kr.kc, TB - pc);
        const T beta = pc == 0 ? T(0) : T(1);
        pack_b(false, kc, nc, xh + pc * N + jc, N, nr, Bp, kr.pack_t);
        for (int64_t ic = m0; ic < m1; ic += kr.mc) {
          const int64_t mc = std::min(kr.mc, m1 - ic);
          pack_dgates_t(mr, mc, kc, dgates + pc * G + ic, G, TB - pc, Ap, db && jc == 0 ? db + ic : nullptr);
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t rows = std::min<int64_t>(mr, mc - ir), m = ic + ir;
            for (int64_t jr = 0; jr < nc; jr += nr) {
              const int64_t cols = std::min<int64_t>(nr, nc - jr), n = jc + jr;
              // The next tile's C rows, which every K block after the first reads back: the 8
              // rows are I or H values apart, out of reach of the hardware prefetchers.
              const int64_t pm = jr + nr < nc ? m : m + mr, pn = jr + nr < nc ? n + nr : jc;
              const int64_t prows = std::min<int64_t>(mr, ic + mc - pm);
              for (int64_t r = 0; r < prows; ++r) {
                const char* pc_row = reinterpret_cast<const char*>(c_at(pm + r, pn));
                for (int64_t l = 0; l < int64_t(sizeof(T)) * nr; l += 64) __builtin_prefetch(pc_row + l, 1);
              }
              const T* ap = Ap + ir * kc;
              const T* bp = Bp + jr * kc;
              const bool one_part = n + cols <= I || n >= I;
              if (rows == mr && cols == nr && one_part) {
                kr.fn(kc, ap, bp, c_at(m, n), n < I ? I : H, T(1), beta);
              } else {
                kr.fn(kc, ap, bp, edge, nr, T(1), T(0));
                for (int64_t r = 0; r < rows; ++r)
                  for (int64_t q = 0; q < cols; ++q) {
                    T& out = *c_at(m + r, n + q);
                    out = edge[r * nr + q] + (beta == T(0) ? T(0) : beta * out);
                  }
              }
            }
          }
        }
      }
    }
  }
}

template void lstm_weight_grad<float>(int64_t, int64_t, int64_t, int64_t, const float*, const float*, float*, float*,
                                      float*);
template void lstm_weight_grad<double>(int64_t, int64_t, int64_t, int64_t, const double*, const double*, double*,
                                       double*, double*);

}  // namespace dk::cpu
