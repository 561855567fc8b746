// Packed GEMM in the Goto/BLIS style:
//   for jc (NC columns of C):  for pc (KC of the inner dimension):  pack B block (kc x nc, stays in L2)
//     for ic (MC rows):  pack A block (mc x kc)
//       for ir (MR rows):  for jr (NR columns):  micro-kernel on an MR x NR tile
// The A micro-panel (MR x kc) stays in L1 across the jr loop; B micro-panels stream from L2.
// Threads: C is cut into a grid of rectangles, one per thread, each computed independently
// (its own packing buffers), which keeps the threads free of barriers.
#include "cpu/gemm/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "cpu/common/parallel.h"
#include "cpu/gemm/gemm_kernels.h"
#include "cpu/gemm/gemm_pack.h"

namespace dk::cpu {

template <typename T>
const GemmKernel<T>& gemm_kernel() {
  static const GemmKernel<T> k = DK_ISA_PICK(GemmKernel<T> (*)(), gemm::kernel_table<T>)();
  return k;
}

namespace {

// Per-thread packing buffers, grown on demand and kept for the thread's lifetime.
struct Scratch {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> a, b;
  size_t a_bytes = 0, b_bytes = 0;

  static void* grow(std::unique_ptr<void, Free>& p, size_t& have, size_t need) {
    if (need > have) {
      need = (need + 63) / 64 * 64;
      p.reset(std::aligned_alloc(64, need));
      if (!p) throw std::bad_alloc();
      have = need;
    }
    return p.get();
  }
};

Scratch& scratch() {
  static thread_local Scratch s;
  return s;
}

// C = beta * C (K == 0 or alpha == 0: A and B are not read).
template <typename T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0))
      std::fill(c, c + N, T(0));
    else
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// One thread's rectangle; A, B, C point at its origin.
// a_rows: see gemm_offset_rows_a (then ta is false and A is the common base).
// c_rows: see gemm_add_to_rows (then C += alpha * op(A) op(B), row i at C + c_rows[i], beta unused).
template <typename T>
void gemm_serial(const GemmKernel<T>& kr, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                 int64_t lda, const int64_t* a_rows, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
                 const int64_t* c_rows = nullptr) {
  const int mr = kr.mr, nr = kr.nr;
  const int64_t kc_max = std::min(kr.kc, K);
  const int64_t mc_max = std::min(kr.mc, (M + mr - 1) / mr * mr);
  const int64_t nc_max = std::min(kr.nc, (N + nr - 1) / nr * nr);
  Scratch& s = scratch();
  T* Ap = static_cast<T*>(Scratch::grow(s.a, s.a_bytes, sizeof(T) * mc_max * kc_max));
  T* Bp = static_cast<T*>(Scratch::grow(s.b, s.b_bytes, sizeof(T) * nc_max * kc_max));
  alignas(64) T edge[16 * 32];  // one tile for partial edges (mr * nr <= 512 for every kernel)

  for (int64_t jc = 0; jc < N; jc += kr.nc) {
    const int64_t nc = std::min(kr.nc, N - jc);
    for (int64_t pc = 0; pc < K; pc += kr.kc) {
      const int64_t kc = std::min(kr.kc, K - pc);
      const T b_beta = pc == 0 ? beta : T(1);  // later K blocks accumulate
      pack_b(tb, kc, nc, tb ? B + jc * ldb + pc : B + pc * ldb + jc, ldb, nr, Bp, kr.pack_t);
      for (int64_t ic = 0; ic < M; ic += kr.mc) {
        const int64_t mc = std::min(kr.mc, M - ic);
        if (a_rows)
          pack_a(false, mc, kc, A + pc, lda, mr, Ap, kr.pack_t, a_rows + ic);
        else
          pack_a(ta, mc, kc, ta ? A + pc * lda + ic : A + ic * lda + pc, lda, mr, Ap, kr.pack_t);
        for (int64_t ir = 0; ir < mc; ir += mr) {
          const int64_t rows = std::min<int64_t>(mr, mc - ir);
          const T* ap = Ap + ir * kc;
          for (int64_t jr = 0; jr < nc; jr += nr) {
            const int64_t cols = std::min<int64_t>(nr, nc - jr);
            const T* bp = Bp + jr * kc;
            if (c_rows) {  // each tile added into its rows while it is in L1
              kr.fn(kc, ap, bp, edge, nr, T(1), T(0));
              for (int64_t i = 0; i < rows; ++i) {
                T* out = C + c_rows[ic + ir + i] + jc + jr;
                const T* e = edge + i * nr;
                for (int64_t j = 0; j < cols; ++j) out[j] += alpha * e[j];
              }
              continue;
            }
            T* c = C + (ic + ir) * ldc + jc + jr;
            if (rows == mr && cols == nr) {
              kr.fn(kc, ap, bp, c, ldc, alpha, b_beta);
            } else {
              kr.fn(kc, ap, bp, edge, nr, T(1), T(0));
              for (int64_t i = 0; i < rows; ++i)
                for (int64_t j = 0; j < cols; ++j) {
                  T& out = c[i * ldc + j];
                  out = alpha * edge[i * nr + j] + (b_beta == T(0) ? T(0) : b_beta * out);
                }
            }
          }
        }
      }
    }
  }
}

// How many threads share C and how: a tm x tn grid minimising the padded tile area per thread
// plus its packing traffic.
struct Grid {
  int tm, tn;
};
Grid choose_grid(int threads, int64_t M, int64_t N, int mr, int nr) {
  Grid best{1, 1};
  double best_cost = 1e300;
  for (int tm = 1; tm <= threads; ++tm) {
    const int tn = threads / tm;
    const int64_t mt = ((M + mr - 1) / mr + tm - 1) / tm * mr;
    const int64_t nt = ((N + nr - 1) / nr + tn - 1) / tn * nr;
    const double cost = double(mt) * double(nt) + 8.0 * double(mt + nt);
    if (cost < best_cost - 1e-9 || (cost <= best_cost + 1e-9 && tm * tn > best.tm * best.tn)) {
      best_cost = cost;
      best = {tm, tn};
    }
  }
  return best;
}

template <typename T>
void gemm_impl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
               const int64_t* a_rows, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, bool parallel) {
  if (M <= 0 || N <= 0) return;
  const bool go_parallel = parallel && !omp_in_parallel();
  if (K <= 0 || alpha == T(0)) {
#pragma omp parallel for schedule(static) \
    num_threads(team(go_parallel ? threads_for_bytes(2.0 * sizeof(T) * M * N) : 1))
    for (int64_t i = 0; i < M; ++i) scale_c(int64_t(1), N, beta, C + i * ldc, ldc);
    return;
  }
  const GemmKernel<T>& kr = gemm_kernel<T>();
  const int threads = go_parallel ? threads_for_flops(2.0 * double(M) * double(N) * double(K)) : 1;
  const Grid g = threads > 1 ? choose_grid(threads, M, N, kr.mr, kr.nr) : Grid{1, 1};
  if (g.tm * g.tn == 1) {
    gemm_serial(kr, trans_a, trans_b, M, N, K, alpha, A, lda, a_rows, B, ldb, beta, C, ldc);
    return;
  }
  // Rectangles in whole micro-tiles; the last row/column of the grid takes the remainder.
  const int64_t m_tiles = (M + kr.mr - 1) / kr.mr, n_tiles = (N + kr.nr - 1) / kr.nr;
  // OpenMP may grant fewer threads than asked (OMP_THREAD_LIMIT, OMP_DYNAMIC, nesting), so each
  // thread walks the rectangles with the team's real size as its stride: every one gets computed.
#pragma omp parallel num_threads(team(g.tm* g.tn))
  for (int t = omp_get_thread_num(); t < g.tm * g.tn; t += omp_get_num_threads()) {
    const int ti = t / g.tn, tj = t % g.tn;
    const int64_t m0 = std::min(M, m_tiles * ti / g.tm * kr.mr), m1 = std::min(M, m_tiles * (ti + 1) / g.tm * kr.mr);
    const int64_t n0 = std::min(N, n_tiles * tj / g.tn * kr.nr), n1 = std::min(N, n_tiles * (tj + 1) / g.tn * kr.nr);
    const T* a0 = a_rows ? A : (trans_a ? A + m0 : A + m0 * lda);
    if (m1 > m0 && n1 > n0)
      gemm_serial(kr, trans_a, trans_b, m1 - m0, n1 - n0, K, alpha, a0, lda, a_rows ? a_rows + m0 : nullptr,
                  trans_b ? B + n0 * ldb : B + n0, ldb, beta, C + m0 * ldc + n0, ldc);
  }
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc, bool parallel) {
  gemm_impl(trans_a, trans_b, M, N, K, alpha, A, lda, static_cast<const int64_t*>(nullptr), B, ldb, beta, C, ldc,
            parallel);
}

template <typename T>
void gemm_add_to_rows(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                      const T* B, int64_t ldb, T* C, const int64_t* c_rows) {
  if (M <= 0 || N <= 0 || K <= 0 || alpha == T(0)) return;
  gemm_serial(gemm_kernel<T>(), trans_a, trans_b, M, N, K, alpha, A, lda, static_cast<const int64_t*>(nullptr), B, ldb,
              T(1), C, int64_t(0), c_rows);
}

template <typename T>
void gemm_offset_rows_a(bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const int64_t* a_rows,
                        const T* B, int64_t ldb, T beta, T* C, int64_t ldc, bool parallel) {
  gemm_impl(false, trans_b, M, N, K, alpha, A, int64_t(0), a_rows, B, ldb, beta, C, ldc, parallel);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t, bool);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t, bool);
template void gemm_add_to_rows<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                                      int64_t, float*, const int64_t*);
template void gemm_add_to_rows<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                       const double*, int64_t, double*, const int64_t*);
template void gemm_offset_rows_a<float>(bool, int64_t, int64_t, int64_t, float, const float*, const int64_t*,
                                        const float*, int64_t, float, float*, int64_t, bool);
template void gemm_offset_rows_a<double>(bool, int64_t, int64_t, int64_t, double, const double*, const int64_t*,
                                         const double*, int64_t, double, double*, int64_t, bool);
template const GemmKernel<float>& gemm_kernel<float>();
template const GemmKernel<double>& gemm_kernel<double>();

}  // namespace dk::cpu
