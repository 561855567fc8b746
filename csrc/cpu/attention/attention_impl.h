// Flash-style scaled dot-product attention, written once and compiled once per ISA
// (cpu/common/isa.h): attention.cpp (generic), attention_avx2.cpp and attention_avx512.cpp include
// this file, each into its own namespace, with the vector width of its flags (cpu/common/simd.h).
//
// Forward (one work item = one head x Br query rows): for each Bc-key tile
//   S = Q K^T * scale + mask (held transposed, keys x queries), online softmax (running max m,
//   running sum l), O = O*alpha + P V; finally O /= l and lse = m + log(l). Only tiles are held.
// Backward (FlashAttention-2; one work item = one head x a set of Bc-key tiles): with
//   Drow_i = rowsum(dO * O), for each query tile recompute P = exp(S - lse), then
//   dV += P^T dO, dP = dO V^T, dS = P (dP - Drow) * scale, dK += dS^T Q, dQ += dS K.
// A query row with nothing to attend to has l = 0: it gets out = 0 and lse = +inf, so the
// backward's P = exp(S - inf) = 0 and all its gradients are 0 (never NaN).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "common/attention_params.h"
#include "cpu/attention/attention_kernels.h"
#include "cpu/common/parallel.h"
#include "cpu/common/simd.h"

namespace dk::cpu::DK_ISA_NAMESPACE::attention {
namespace {

using simd::kLanes;
using simd::madd;

// Register block of the tile GEMM: kMR rows x kMCV vectors.
#if defined(DK_ISA_AVX512)
constexpr int kMR = 6, kMCV = 4;
#elif defined(DK_ISA_AVX2)
constexpr int kMR = 6, kMCV = 2;
#else
constexpr int kMR = 4, kMCV = 2;
#endif

// Zero-initialised scratch, defined here rather than std::vector<T>: a std:: template
// instantiated in an ISA-flagged translation unit is a weak symbol the linker may pick for
// every other user of the same type, which would put AVX-512 code on the portable path.
template <class T>
class Scratch {
 public:
  explicit Scratch(int64_t n) : n_(n), p_(n > 0 ? new T[size_t(n)]() : nullptr) {}
  ~Scratch() { delete[] p_; }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* data() { return p_; }
  T* begin() { return p_; }
  T* end() { return p_ + n_; }
  int64_t size() const { return n_; }
  T& operator[](int64_t i) { return p_[i]; }

 private:
  int64_t n_;
  T* p_;
};

template <class T>
using Vec = simd::Vec<T>;

// ------------------------------------------------------------------ tile GEMM
// C[M x N] (op)= A[M x K] * B[K x N] on small tiles. A is read as scalars A[m*a_rs + k*a_ks]
// (so a transposed A costs nothing), B and C are row-major with N a multiple of the lane count
// (callers pad). mode 0: C = AB; 1: C += AB; 2: C = diag(rs) C + AB; 3: C = C * (AB - rs) * f
// elementwise, rs per row (the softmax gradient, with C holding P on entry).
template <class T, int R, int CV>
inline void micro(int64_t K, const T* A, int64_t a_rs, int64_t a_ks, const T* B, int64_t ldb, T* C, int64_t ldc,
                  int mode, const T* rs, T f) {
  using V = typename Vec<T>::v;
  constexpr int L = kLanes<T>;
  V c[R][CV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < CV; ++j) {
      if (mode == 0 || mode == 3) {
        c[r][j] = V{};
      } else {
        c[r][j] = simd::load(C + r * ldc + j * L);
        if (mode == 2) c[r][j] *= rs[r];
      }
    }
  for (int64_t k = 0; k < K; ++k) {
    V b[CV];
#pragma GCC unroll 8
    for (int j = 0; j < CV; ++j) b[j] = simd::load(B + k * ldb + j * L);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const T a = A[r * a_rs + k * a_ks];
#pragma GCC unroll 8
      for (int j = 0; j < CV; ++j) c[r][j] += a * b[j];
    }
  }
  if (mode == 3) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
      for (int j = 0; j < CV; ++j) c[r][j] = simd::load(C + r * ldc + j * L) * (c[r][j] - rs[r]) * f;
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < CV; ++j) simd::store(C + r * ldc + j * L, c[r][j]);
}

template <class T, int R>
inline void micro_cv(int cv, int64_t K, const T* A, int64_t a_rs, int64_t a_ks, const T* B, int64_t ldb, T* C,
                     int64_t ldc, int mode, const T* rs, T f) {
  switch (cv) {
    case 1: micro<T, R, 1>(K, A, a_rs, a_ks, B, ldb, C, ldc, mode, rs, f); break;
    case 2: micro<T, R, 2>(K, A, a_rs, a_ks, B, ldb, C, ldc, mode, rs, f); break;
    case 3: micro<T, R, 3>(K, A, a_rs, a_ks, B, ldb, C, ldc, mode, rs, f); break;
    default: micro<T, R, 4>(K, A, a_rs, a_ks, B, ldb, C, ldc, mode, rs, f); break;
  }
}

// Columns of B one register block covers.
template <class T>
constexpr int kPanel = kMCV * kLanes<T>;

// C (op)= A B over a tile (micro's modes), B's column blocks of kPanel columns bps elements apart (row pitch ldb within
// a block): bps = kPanel is a plain row-major B; ldb = kPanel, bps = K * kPanel a packed B.
template <class T>
void tile_gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_ks, const T* B, int64_t ldb,
               int64_t bps, T* C, int64_t ldc, int mode, const T* rs, T f = T(1)) {
  constexpr int L = kLanes<T>;
  for (int64_t n0 = 0, pj = 0; n0 < N; n0 += kPanel<T>, ++pj) {
    const int cv = int(std::min<int64_t>(kMCV, (N - n0) / L));
    const T* b = B + pj * bps;
    for (int64_t m0 = 0; m0 < M; m0 += kMR) {
      const int r = int(std::min<int64_t>(kMR, M - m0));
      const T* a = A + m0 * a_rs;
      T* c = C + m0 * ldc + n0;
      const T* s = rs ? rs + m0 : nullptr;
      switch (r) {
        case 1: micro_cv<T, 1>(cv, K, a, a_rs, a_ks, b, ldb, c, ldc, mode, s, f); break;
        case 2: micro_cv<T, 2>(cv, K, a, a_rs, a_ks, b, ldb, c, ldc, mode, s, f); break;
        case 3: micro_cv<T, 3>(cv, K, a, a_rs, a_ks, b, ldb, c, ldc, mode, s, f); break;
        case 4: micro_cv<T, 4>(cv, K, a, a_rs, a_ks, b, ldb, c, ldc, mode, s, f); break;
        case 5: micro_cv<T, 5>(cv, K, a, a_rs, a_ks, b, ldb, c, ldc, mode, s, f); break;
        default: micro_cv<T, 6>(cv, K, a, a_rs, a_ks, b, ldb, c, ldc, mode, s, f); break;
      }
    }
  }
}

// ------------------------------------------------------------------ helpers
constexpr int64_t kBr = 64;  // query rows per tile
constexpr int64_t kBc = 64;  // keys per tile

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Packed B operands (tile_gemm with ldb = kPanel, bps = K * kPanel): column block j of a K x N
// operand is K rows of kPanel columns, contiguous, so a register block's B is one stream; the
// copy also pads the columns to whole vectors.

// The transpose of nc rows of length D (row stride ld), zero columns from nc up to ncp.
template <class T>
void pack_transposed_panels(const T* src, int64_t ld, int64_t nc, int64_t ncp, int64_t D, T* dst) {
  constexpr int W = kPanel<T>;
  for (int64_t c = 0; c < ncp; ++c) {
    T* col = dst + (c / W) * D * W + c % W;
    if (c < nc) {
      const T* row = src + c * ld;
      for (int64_t d = 0; d < D; ++d) col[d * W] = row[d];
    } else {
      for (int64_t d = 0; d < D; ++d) col[d * W] = T(0);
    }
  }
}

// rows x cols (row stride cols), zero columns from cols up to colsp.
template <class T>
void pack_rows_panels(const T* src, int64_t rows, int64_t cols, int64_t colsp, T* dst) {
  constexpr int W = kPanel<T>;
  for (int64_t j0 = 0; j0 < colsp; j0 += W) {
    T* panel = dst + j0 * rows;
    const int64_t w = std::min<int64_t>(W, colsp - j0), real = std::clamp<int64_t>(cols - j0, 0, w);
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(panel + r * W, src + r * cols + j0, sizeof(T) * real);
      for (int64_t e = real; e < w; ++e) panel[r * W + e] = T(0);
    }
  }
}

// One row of scores s[0, ncp) for query i against keys [k0, k0 + nc): s = s*scale + mask,
// and -inf where no key exists (c >= nc) or causality forbids (k0 + c > i).
template <class T>
inline void scores_row(const AttentionParams& p, T* s, int64_t i, int64_t k0, int64_t nc, int64_t ncp, T scale,
                       const T* mask_row) {
  constexpr int L = kLanes<T>;
  for (int64_t c = 0; c < ncp; c += L) simd::store(s + c, simd::load(s + c) * scale);
  if (mask_row) {
    if (p.m_cs == 1) {
      for (int64_t c = 0; c < nc; ++c) s[c] += mask_row[c];
    } else {
      for (int64_t c = 0; c < nc; ++c) s[c] += mask_row[c * p.m_cs];
    }
  }
  int64_t valid = nc;
  if (p.causal) valid = std::min<int64_t>(nc, std::max<int64_t>(i - k0 + 1, 0));
  const T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t c = valid; c < ncp; ++c) s[c] = ninf;
}

// Threads for one call (threads_for: small problems run on the calling thread).
inline int attention_threads(const AttentionParams& p) {
  const double macs = double(p.BH) * double(p.Lq) * double(p.Lk) * double(p.D + p.Dv);
  return threads_for_flops(2.0 * macs);
}

// ------------------------------------------------------------------ forward steps
// Scores are kept transposed, St = K_tile Q_tile^T (keys x queries): K rows are used in place,
// only the query tile is transposed (once per work item), and the softmax statistics of the
// Br queries (max m, sum l, rescale alpha) are plain lane-wise vector ops down the key rows.

// St = St * scale + mask, -inf where causality forbids (key k0 + c after query q0 + r);
// mx = the column max over the nc key rows. mask_tile: mask at (q0, k0), or null.
template <class T>
inline void scale_mask_max(const AttentionParams& p, T* St, int64_t nc, int64_t nr, int64_t nrp, int64_t q0, int64_t k0,
                           const T* mask_tile, T scale, T* mx) {
  using V = typename Vec<T>::v;
  constexpr int L = kLanes<T>;
  const T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t r = 0; r < nrp; r += L) simd::store(mx + r, simd::splat<T>(ninf));
  for (int64_t c = 0; c < nc; ++c) {
    T* row = St + c * nrp;
    const int64_t j = k0 + c;
    for (int64_t r = 0; r < nrp; r += L) simd::store(row + r, simd::load(row + r) * scale);
    if (mask_tile) {
      const T* mc = mask_tile + c * p.m_cs;
      for (int64_t r = 0; r < nr; ++r) row[r] += mc[r * p.m_rs];
    }
    if (p.causal)  // query i = q0 + r sees key j only if j <= i
      for (int64_t r = 0, stop = std::min(nrp, j - q0); r < stop; ++r) row[r] = ninf;
    for (int64_t r = 0; r < nrp; r += L) {
      const V x = simd::load(row + r), y = simd::load(mx + r);
      simd::store(mx + r, x > y ? x : y);
    }
  }
}

// Online softmax over one key tile: m = max(m, mx), alpha = exp(m_old - m), St = exp(St - m)
// (P, transposed), l = l * alpha + column sums of P. The running state lives in `st`.
template <class T>
struct SoftmaxState {
  T *m, *l, *alpha, *msafe, *mx;
};

template <class T>
inline void online_softmax(const SoftmaxState<T>& st, T* St, int64_t nc, int64_t nrp) {
  using V = typename Vec<T>::v;
  constexpr int L = kLanes<T>;
  const T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t r = 0; r < nrp; r += L) {
    const V mo = simd::load(st.m + r), mn0 = simd::load(st.mx + r);
    const V mn = mn0 > mo ? mn0 : mo;
    const V ms = mn == simd::splat<T>(ninf) ? V{} : mn;  // all -inf so far: keep exp(-inf - 0) = 0
    simd::store(st.m + r, mn);
    simd::store(st.msafe + r, ms);
    simd::store(st.alpha + r, simd::exp(mo - ms));
  }
  for (int64_t r = 0; r < nrp; r += L) simd::store(st.mx + r, V{});  // now: column sums
  for (int64_t c = 0; c < nc; ++c) {
    T* row = St + c * nrp;
    for (int64_t r = 0; r < nrp; r += L) {
      const V e = simd::exp(simd::load(row + r) - simd::load(st.msafe + r));
      simd::store(row + r, e);
      simd::store(st.mx + r, simd::load(st.mx + r) + e);
    }
  }
  for (int64_t r = 0; r < nrp; r += L)
    simd::store(st.l + r, simd::load(st.l + r) * simd::load(st.alpha + r) + simd::load(st.mx + r));
}

// out rows = O / l and lse = m + log(l); a row with nothing to attend to (l = 0) gets out = 0 and
// lse = +inf (a NaN l propagates).
template <class T>
inline void normalise_rows(const T* O, int64_t ldo, const T* m, const T* l, int64_t nr, int64_t Dv, T* out, T* lse) {
  for (int64_t r = 0; r < nr; ++r) {
    T* o = out + r * Dv;
    const T* acc = O + r * ldo;
    if (!(l[r] == T(0))) {
      const T inv = T(1) / l[r];
      for (int64_t e = 0; e < Dv; ++e) o[e] = acc[e] * inv;
      lse[r] = m[r] + std::log(l[r]);
    } else {
      for (int64_t e = 0; e < Dv; ++e) o[e] = T(0);
      lse[r] = std::numeric_limits<T>::infinity();
    }
  }
}

// ------------------------------------------------------------------ forward
// Query tiles sharing one pass over K and V: a key tile, read from L3 once, then serves every
// query tile of the group from L2. At most kGroup, and no more than keeps the group's Q^T and O
// tiles within kGroupBytes (half a small L2); fewer when there would be too few work items to
// share among the threads. The grouping only orders the work: each row's arithmetic is the
// same whatever the group (and the thread count).
constexpr int64_t kGroup = 4;
constexpr int64_t kGroupBytes = 256 * 1024;

template <class T>
int64_t forward_group(const AttentionParams& p, int64_t nqb, int nt) {
  const int64_t tile_bytes = (p.D * round_up(kBr, kPanel<T>) + kBr * round_up(p.Dv, kLanes<T>)) * int64_t(sizeof(T));
  int64_t g = std::max<int64_t>(1, std::min({kGroup, nqb, kGroupBytes / tile_bytes}));
  while (g > 1 && p.BH * ((nqb + g - 1) / g) < 4 * nt) --g;
  return g;
}

// One work item = one head x a group of up to G query tiles of Br rows. For each key tile (its
// V packed once), for each query tile of the group that sees it: S = K Q^T, scale and mask,
// online softmax, O = diag(alpha) O + P V; then O / l.
template <class T>
void forward_tiles(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask, const int64_t* moff,
                   T* out, T* lse) {
  constexpr int L = kLanes<T>, W = kPanel<T>;
  const int64_t Lq = p.Lq, Lk = p.Lk, D = p.D, Dv = p.Dv;
  const int64_t Dvp = round_up(Dv, L), qt_size = D * round_up(kBr, W), o_size = kBr * Dvp;
  const int64_t nqb = (Lq + kBr - 1) / kBr;
  const int nt = attention_threads(p);
  const int64_t G = forward_group<T>(p, nqb, nt), ngb = (nqb + G - 1) / G;
  const T scale = T(p.scale);
  const T ninf = -std::numeric_limits<T>::infinity();

#pragma omp parallel num_threads(team(nt))
  {
    Scratch<T> QT(G * qt_size), O(G * o_size), Vp(kBc * round_up(Dvp, W)), St(kBc * kBr);
    Scratch<T> m(G * kBr), l(G * kBr), alpha(kBr), msafe(kBr), mx(kBr);
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < p.BH * ngb; ++it) {
      const int64_t bh = it / ngb;
      int64_t gb = it % ngb;
      if (p.causal) gb = ngb - 1 - gb;  // the longest (lowest) rows first balances the dynamic schedule
      const int64_t qb0 = gb * G, ng = std::min(G, nqb - qb0);
      const T* Kb = k + bh * Lk * D;
      const T* Vb = v + bh * Lk * Dv;
      for (int64_t g = 0; g < ng; ++g) {
        const int64_t q0 = (qb0 + g) * kBr, nr = std::min(kBr, Lq - q0);
        pack_transposed_panels(q + (bh * Lq + q0) * D, D, nr, round_up(nr, L), D, QT.data() + g * qt_size);
      }
      std::fill(m.begin(), m.end(), ninf);
      std::fill(l.begin(), l.end(), T(0));
      // causal: each query tile stops at its diagonal; the group at its last tile's
      const int64_t q_end = std::min(Lq, (qb0 + ng) * kBr);
      const int64_t kend = p.causal ? std::min(Lk, q_end) : Lk;
      for (int64_t k0 = 0; k0 < kend; k0 += kBc) {
        const int64_t nc_pack = std::min(kBc, kend - k0);
        pack_rows_panels(Vb + k0 * Dv, nc_pack, Dv, Dvp, Vp.data());
        for (int64_t g = 0; g < ng; ++g) {
          const int64_t q0 = (qb0 + g) * kBr, nr = std::min(kBr, Lq - q0), nrp = round_up(nr, L);
          const int64_t kend_g = p.causal ? std::min(Lk, q0 + nr) : Lk;
          if (k0 >= kend_g) continue;
          const int64_t nc = std::min(kBc, kend_g - k0);
          const SoftmaxState<T> state{m.data() + g * kBr, l.data() + g * kBr, alpha.data(), msafe.data(), mx.data()};
          tile_gemm<T>(nc, nrp, D, Kb + k0 * D, D, 1, QT.data() + g * qt_size, W, D * W, St.data(), nrp, 0,
                       nullptr);  // St = K Q^T
          const T* mask_tile = p.has_mask ? mask + moff[bh] + q0 * p.m_rs + k0 * p.m_cs : nullptr;
          scale_mask_max(p, St.data(), nc, nr, nrp, q0, k0, mask_tile, scale, mx.data());
          online_softmax(state, St.data(), nc, nrp);
          // O = diag(alpha) O + P V with P = St^T (the first tile overwrites O)
          tile_gemm<T>(nr, Dvp, nc, St.data(), 1, nrp, Vp.data(), W, nc_pack * W, O.data() + g * o_size, Dvp,
                       k0 == 0 ? 0 : 2, alpha.data());
        }
      }
      for (int64_t g = 0; g < ng; ++g) {
        const int64_t q0 = (qb0 + g) * kBr, nr = std::min(kBr, Lq - q0);
        normalise_rows(O.data() + g * o_size, Dvp, m.data() + g * kBr, l.data() + g * kBr, nr, Dv,
                       out + (bh * Lq + q0) * Dv, lse + bh * Lq + q0);
      }
    }
  }
}

// ------------------------------------------------------------------ backward steps
// Drow_i = dO_i . O_i for every query row, summed in order and with the same multiply-add as the
// tile GEMM (fused where the ISA has FMA), so that where dP_ij = dO_i . v_j and o_i = v_j exactly
// (a single key, a causal first row) dP - D is exactly 0, as is the gradient.
template <class T>
inline void row_dots(const T* dout, const T* out, int64_t rows, int64_t Dv, T* Drow) {
#pragma omp for schedule(static)
  for (int64_t row = 0; row < rows; ++row) {
    const T* a = dout + row * Dv;
    const T* b = out + row * Dv;
    T s = 0;
    for (int64_t e = 0; e < Dv; ++e) s = madd(a[e], b[e], s);
    Drow[row] = s;
  }
}

// P = exp(S - lse) row by row, S the raw scores of query rows q0.. against keys k0.. (scaled,
// masked and causally cut here). mask_head: this head's mask, or null.
template <class T>
inline void probabilities(const AttentionParams& p, T* S, int64_t nr, int64_t ncp, int64_t nc, int64_t q0, int64_t k0,
                          const T* mask_head, const T* lse_rows, T scale) {
  constexpr int L = kLanes<T>;
  for (int64_t r = 0; r < nr; ++r) {
    T* s = S + r * ncp;
    const int64_t i = q0 + r;
    const T* mrow = mask_head ? mask_head + i * p.m_rs + k0 * p.m_cs : nullptr;
    scores_row(p, s, i, k0, nc, ncp, scale, mrow);
    const T l_i = lse_rows[r];
    for (int64_t c = 0; c < ncp; c += L) simd::store(s + c, simd::exp(simd::load(s + c) - l_i));
  }
}

// ------------------------------------------------------------------ backward
// Key tiles of one set sharing one pass over the query tiles (Q, dO and the dQ rows read, packed
// and written once per group): at most kBackwardGroup, and no more than keeps the group's packed
// K, V and dK, dV accumulators within kBackwardGroupBytes. That is more than L2 holds, on purpose:
// the per-pass costs (streaming Q, dO and dQ, packing them) outweigh reading the group's tiles
// from L3 (benchmarks/results/attention.md: 8 tiles of D 128 beat 2 and 4). Each dQ row still sums
// its key tiles in ascending order: the grouping only orders the work.
constexpr int64_t kBackwardGroup = 8;
constexpr int64_t kBackwardGroupBytes = 1280 * 1024;

template <class T>
int64_t backward_group(const AttentionParams& p, int64_t nkb) {
  const int64_t Dp = round_up(p.D, kLanes<T>), Dvp = round_up(p.Dv, kLanes<T>);
  const int64_t tile_bytes = kBc * (3 * Dp + 2 * Dvp) * int64_t(sizeof(T));
  return std::max<int64_t>(1, std::min({kBackwardGroup, nkb, kBackwardGroupBytes / tile_bytes}));
}

// FlashAttention-2: one work item = one head x a set of key tiles, taken a group at a time.
// For each query tile (its dQ rows in a tile buffer meanwhile), for each key tile of the group
// it sees: P = exp(S - lse), dV += P^T dO, dP = dO V^T, dS = P (dP - Drow) scale, dK += dS^T Q,
// dQ += dS K.
// (~100 lines, kept whole: its steps are named helpers; the loop nest, the scratch tiles and the
// five tile GEMMs read best in one place.)
template <class T>
void backward_tiles(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask, const int64_t* moff,
                    const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  constexpr int L = kLanes<T>, W = kPanel<T>;
  const int64_t BH = p.BH, Lq = p.Lq, Lk = p.Lk, D = p.D, Dv = p.Dv;
  const int64_t Dp = round_up(D, L), Dvp = round_up(Dv, L);
  const int64_t nqb = (Lq + kBr - 1) / kBr, nkb = (Lk + kBc - 1) / kBc;
  const T scale = T(p.scale);
  const int nt = attention_threads(p);
  const int64_t G = backward_group<T>(p, nkb);
  // Every B operand is packed in kPanel-wide column panels (one contiguous stream per register
  // block): K^T, V^T and K once per key tile of the group, Q and dO once per query tile.
  const int64_t kt_size = D * kBc, vt_size = Dv * kBc, kp_size = kBc * round_up(Dp, W);
  const int64_t dk_size = kBc * Dp + L, dv_size = kBc * Dvp + L;

  // Key tiles of one head are split into `split` interleaved sets when there are too few heads
  // to keep every thread busy; each set accumulates dQ into its own buffer (set 0 into dq),
  // summed at the end. Memory stays linear in Lq.
  int64_t split = 1;
  if (BH < 2 * nt && nkb > 1) split = std::min<int64_t>(nkb, (2 * nt + BH - 1) / BH);
  Scratch<T> Drow(BH * Lq);
  Scratch<T> dq_extra((split - 1) * BH * Lq * D);
  const int64_t qsize = BH * Lq * D;

#pragma omp parallel num_threads(team(nt))
  {
    row_dots(dout, out, BH * Lq, Dv, Drow.data());
#pragma omp for schedule(static)
    for (int64_t j = 0; j < qsize; ++j) dq[j] = T(0);
#pragma omp for schedule(static)
    for (int64_t j = 0; j < (split - 1) * qsize; ++j) dq_extra[j] = T(0);

    Scratch<T> KT(G * kt_size), VT(G * vt_size), Kp(G * kp_size), dKa(G * dk_size), dVa(G * dv_size);
    Scratch<T> S(kBr * kBc), Qp(kBr * round_up(Dp, W)), dOp(kBr * round_up(Dvp, W));
    Scratch<T> dQt(kBr * Dp + L);
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < BH * split; ++it) {
      const int64_t bh = it / split, set = it % split;
      T* dqb = (set == 0 ? dq : dq_extra.data() + (set - 1) * qsize) + bh * Lq * D;
      const T* Kb = k + bh * Lk * D;
      const T* Vb = v + bh * Lk * Dv;
      const T* mask_head = p.has_mask ? mask + moff[bh] : nullptr;
      for (int64_t kb0 = set; kb0 < nkb; kb0 += G * split) {
        const int64_t ng = std::min<int64_t>(G, (nkb - kb0 + split - 1) / split);
        for (int64_t g = 0; g < ng; ++g) {
          const int64_t k0 = (kb0 + g * split) * kBc, nc = std::min(kBc, Lk - k0), ncp = round_up(nc, L);
          pack_transposed_panels(Kb + k0 * D, D, nc, ncp, D, KT.data() + g * kt_size);
          pack_transposed_panels(Vb + k0 * Dv, Dv, nc, ncp, Dv, VT.data() + g * vt_size);
          pack_rows_panels(Kb + k0 * D, nc, D, Dp, Kp.data() + g * kp_size);
        }
        std::fill(dKa.begin(), dKa.end(), T(0));
        std::fill(dVa.begin(), dVa.end(), T(0));
        // causal: query rows below k0 attend none of a tile's keys, so their tiles are skipped
        for (int64_t qb = p.causal ? kb0 * kBc / kBr : 0; qb < nqb; ++qb) {
          const int64_t q0 = qb * kBr, nr = std::min(kBr, Lq - q0);
          const T* Q = q + (bh * Lq + q0) * D;
          const T* dO = dout + (bh * Lq + q0) * Dv;
          pack_rows_panels(dO, nr, Dv, Dvp, dOp.data());
          pack_rows_panels(Q, nr, D, Dp, Qp.data());
          for (int64_t r = 0; r < nr; ++r) std::memcpy(dQt.data() + r * Dp, dqb + (q0 + r) * D, sizeof(T) * D);
          for (int64_t g = 0; g < ng; ++g) {
            const int64_t k0 = (kb0 + g * split) * kBc, nc = std::min(kBc, Lk - k0), ncp = round_up(nc, L);
            if (p.causal && qb < k0 / kBr) continue;
            const T *KTg = KT.data() + g * kt_size, *VTg = VT.data() + g * vt_size, *Kpg = Kp.data() + g * kp_size;
            tile_gemm<T>(nr, ncp, D, Q, D, 1, KTg, W, D * W, S.data(), ncp, 0, nullptr);  // S = Q K^T
            probabilities(p, S.data(), nr, ncp, nc, q0, k0, mask_head, lse + bh * Lq + q0, scale);
            tile_gemm<T>(nc, Dvp, nr, S.data(), 1, ncp, dOp.data(), W, nr * W, dVa.data() + g * dv_size, Dvp, 1,
                         nullptr);  // dV += P^T dO
            // dS = P (dO V^T - Drow) scale, over P in place
            tile_gemm<T>(nr, ncp, Dv, dO, Dv, 1, VTg, W, Dv * W, S.data(), ncp, 3, Drow.data() + bh * Lq + q0, scale);
            tile_gemm<T>(nc, Dp, nr, S.data(), 1, ncp, Qp.data(), W, nr * W, dKa.data() + g * dk_size, Dp, 1,
                         nullptr);                                                                   // dK += dS^T Q
            tile_gemm<T>(nr, Dp, nc, S.data(), ncp, 1, Kpg, W, nc * W, dQt.data(), Dp, 1, nullptr);  // dQ += dS K
          }
          for (int64_t r = 0; r < nr; ++r) std::memcpy(dqb + (q0 + r) * D, dQt.data() + r * Dp, sizeof(T) * D);
        }
        for (int64_t g = 0; g < ng; ++g) {
          const int64_t k0 = (kb0 + g * split) * kBc, nc = std::min(kBc, Lk - k0);
          for (int64_t c = 0; c < nc; ++c) {
            std::memcpy(dk + (bh * Lk + k0 + c) * D, dKa.data() + g * dk_size + c * Dp, sizeof(T) * D);
            std::memcpy(dv + (bh * Lk + k0 + c) * Dv, dVa.data() + g * dv_size + c * Dvp, sizeof(T) * Dv);
          }
        }
      }
    }
    if (split > 1) {
#pragma omp for schedule(static)
      for (int64_t j = 0; j < qsize; ++j) {
        T s = dq[j];
        for (int64_t t = 0; t < split - 1; ++t) s += dq_extra[t * qsize + j];
        dq[j] = s;
      }
    }
  }
}

}  // namespace

// The entry points of this ISA's copy (declared in attention_kernels.h).
template <class T>
void forward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask, const int64_t* moff, T* out,
             T* lse) {
  forward_tiles<T>(p, q, k, v, mask, moff, out, lse);
}

template <class T>
void backward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask, const int64_t* moff,
              const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  backward_tiles<T>(p, q, k, v, mask, moff, out, lse, dout, dq, dk, dv);
}

DK_ATTENTION_INSTANTIATE(float)
DK_ATTENTION_INSTANTIATE(double)

}  // namespace dk::cpu::DK_ISA_NAMESPACE::attention
