#pragma once
// The backward of depthwise 3x3 stride-1 convolution (dilation 1, padding <= 2, K = C): dx, dw and db
// in one pass per plane, so each dy plane is read from memory once for all three (they were three
// passes over dy, and dw a fourth over x). Included by conv2d_depthwise_impl.h inside each ISA copy.
//
// Per plane, dy goes into a zero-padded copy D (dy row oh at row oh + 2 - ph, column 2 - pw on) and,
// when dw is wanted, x into a zero-padded copy X (x row ih at row ih + ph, column pw on); both have
// rows of L elements and stay in L1 for a plane of up to ~64x64 floats. Then:
// - dx: row ih is the forward's register-blocked row (conv2d_depthwise_rows.h) on D rows ih..ih+2
//   with the weights flipped in (i, j): the same sums in the same order as dx through the forward.
// - dw and db: each dy vector of D times X rows oh..oh+2 at column shifts 0..2 into 9 vector
//   accumulators, and into a 10th for db; lanes summed in double per plane into the plane's slot, the
//   samples added in order per channel after the parallel loop (independent of the team size).
// Padding zeros enter the sums only as products 0 * v: exact unless v is not finite. So a channel
// with a non-finite weight takes the exact dx, and a plane whose dw sums are not finite is redone
// exactly (plane_exact). db adds dy values and zeros only: exact as is. Floors and measurements:
// benchmarks/results/conv.md ("Depthwise 3x3 stride 1 backward fused").
#include "cpu/conv2d/conv2d_depthwise_common.h"
#include "cpu/conv2d/conv2d_depthwise_rows.h"

namespace dk::cpu::DK_DW_NS {

inline bool s1_fused_applies(const Conv2dParams& p) {
  return p.K == p.C && p.sh == 1 && p.sw == 1 && p.kh == 3 && p.kw == 3 && p.dh == 1 && p.dw == 1 && p.ph <= 2 &&
         p.pw <= 2 && p.Ho >= 1 && p.Wo >= 1;
}

// The padded copies' shape: nb vector blocks per row (enough for dx's W and dw's Wo columns), rows of
// L = nb V + 2 (the blocks' 3 taps reach 2 past them).
struct S1Geom {
  int64_t nbx, nbo, L, rows_d, rows_x;
};

template <int V>
inline S1Geom s1_geom(const Conv2dParams& p) {
  S1Geom g;
  g.nbx = cdiv(p.W, V);
  g.nbo = cdiv(p.Wo, V);
  g.L = dmax(g.nbx, g.nbo) * V + 2;
  g.rows_d = p.H + 2;   // dx row ih reads D rows ih..ih+2; dy's last row lands at H + ph - 1 <= H + 1
  g.rows_x = p.Ho + 2;  // dw's output row oh reads X rows oh..oh+2
  return g;
}

// rows x cols of src (ld apart) into dst at (r0, c0), rows L apart; the rest of dst is left as is
// (zero: set once per thread, never written).
template <typename T>
inline void s1_copy_in(const T* src, int64_t rows, int64_t cols, T* dst, int64_t L, int64_t r0, int64_t c0) {
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + (r0 + r) * L + c0, src + r * cols, sizeof(T) * size_t(cols));
}

// dx of one plane from D, wf the channel's flipped weights. q: the padded geometry the rows read.
template <typename T, int V>
void s1_dx_plane(const Conv2dParams& p, const S1Geom& g, const T* D, const T* wf, const int64_t* ob, T* dx) {
  Conv2dParams q = p;
  q.W = g.L;
  q.pw = 0;
  q.Wo = p.W;  // fwd_row_scalar's row length
  for (int64_t ih = 0; ih < p.H; ++ih) {
    const T* dr = D + ih * g.L;
    T* out = dx + ih * p.W;
    if (p.W < V) {
      fwd_row_scalar(q, dr, g.L, wf, T(0), out);
    } else if (ih + 1 < p.H) {
      fwd_row_pair_blocks<T, V>(dr, wf, q, ob, g.nbx, T(0), out, out + p.W);
      ++ih;
    } else {
      fwd_row_blocks<T, 1, V>(dr, wf, q, 0, 0, 3, ob, g.nbx, T(0), out);
    }
  }
}

// dw (s[0..9), tap t = 3i + j) and db (s[9]) of one plane from D and X.
template <typename T, int V>
void s1_dw_plane(const Conv2dParams& p, const S1Geom& g, const T* D, const T* X, double* s) {
  typedef T TV __attribute__((vector_size(V * sizeof(T))));
  TV acc[10];
  for (int t = 0; t < 10; ++t) acc[t] = TV{};
  for (int64_t oh = 0; oh < p.Ho; ++oh) {
    const T* gr = D + (oh + 2 - p.ph) * g.L + 2 - p.pw;  // dy row oh; zeros past Wo
    const T* xr = X + oh * g.L;
    for (int64_t b = 0; b < g.nbo; ++b) {
      TV gv, v;
      std::memcpy(&gv, gr + b * V, sizeof gv);
      acc[9] += gv;
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
          std::memcpy(&v, xr + i * g.L + b * V + j, sizeof v);
          acc[3 * i + j] += gv * v;
        }
    }
  }
  for (int t = 0; t < 10; ++t) {
    double sum = 0.0;
    for (int l = 0; l < V; ++l) sum += double(acc[t][l]);
    s[t] = sum;
  }
}

// dx and dw (either may be null) for s1_fused_applies(p), and db (may be null) along with dw: returns
// whether db was written (not without dw: the caller sums it). One task per plane in memory order (x, dy
// and dx stream on); the plane's 9 dw sums and its db sum go to its own slot of `sums`.
template <typename T>
bool s1_backward(const Conv2dParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  if (!dx && !dw) return false;  // db alone: the caller's one read of dy
  constexpr int V = kDwVecBytes / sizeof(T);
  const S1Geom g = s1_geom<V>(p);
  const int64_t planes = p.N * p.C;
  // new[], not std::vector: no std:: template in an ISA copy
  double* sums = dw ? new double[size_t(10 * planes)] : nullptr;
  T* wf = new T[size_t(9 * p.C)];  // each channel's weights flipped in (i, j), and whether they are finite
  bool* fin = new bool[size_t(p.C)];
  for (int64_t c = 0; c < p.C; ++c) {
    for (int t = 0; t < 9; ++t) wf[9 * c + t] = w[9 * c + 8 - t];
    fin[c] = finite_taps(w + 9 * c, 9);
  }
  int64_t* ob = new int64_t[size_t(g.nbx)];  // dx blocks' first columns (the last overlaps the one before)
  for (int64_t b = 0; b < g.nbx; ++b) ob[b] = dmax(0, dmin(b * V, p.W - V));
#pragma omp parallel num_threads(team(dw_parallel(p) ? num_threads() : 1))
  {
    // zeroed once: the padding stays zero
    T* D = new T[size_t(g.rows_d * g.L)]();
    T* X = dw ? new T[size_t(g.rows_x * g.L)]() : nullptr;
#pragma omp for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      const int64_t c = pl % p.C;
      const T* xp = x + pl * p.in_plane();
      const T* dyp = dy + pl * p.out_plane();
      s1_copy_in(dyp, p.Ho, p.Wo, D, g.L, 2 - p.ph, 2 - p.pw);
      if (dx) {
        T* dxp = dx + pl * p.in_plane();
        if (fin[c])
          s1_dx_plane<T, V>(p, g, D, wf + 9 * c, ob, dxp);
        else
          plane_exact<T>(p, xp, w + 9 * c, dyp, dxp, nullptr);
      }
      if (!dw) continue;
      double* s = sums + 10 * pl;
      s1_copy_in(xp, p.H, p.W, X, g.L, p.ph, p.pw);
      s1_dw_plane<T, V>(p, g, D, X, s);
      bool ok = true;
      for (int t = 0; t < 9; ++t) ok = ok && __builtin_isfinite(s[t]);
      if (!ok) plane_exact<T>(p, xp, w + 9 * c, dyp, nullptr, s);
    }
    delete[] X;
    delete[] D;
  }
  delete[] ob;
  delete[] fin;
  delete[] wf;
  if (!dw) return false;
  for (int64_t c = 0; c < p.C; ++c)
    for (int t = 0; t < 10; ++t) {
      double acc = 0.0;
      for (int64_t n = 0; n < p.N; ++n) acc += sums[10 * (n * p.C + c) + t];
      if (t < 9)
        dw[9 * c + t] = T(acc);
      else if (db)
        db[c] = T(acc);
    }
  delete[] sums;
  return db != nullptr;
}

}  // namespace dk::cpu::DK_DW_NS
