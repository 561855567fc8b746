#pragma once
// Depthwise 3x3 stride-2 convolution (dilation 1, padding <= 2) in column phases: the forward (any
// channel multiplier) and, for K = C, the backward's dx and dw in one pass over each plane.
// Included by conv2d_depthwise_impl.h inside each ISA copy.
//
// In padded coordinates (row r = ih + ph, column c = iw + pw) output (oh, ow) reads rows 2oh + i and
// columns 2ow + j. Each input row is split once into its even and odd padded columns E[u] = xp[2u],
// O[u] = xp[2u + 1] (zeros for the padding and for columns no output reads), so tap j of V outputs is
// one contiguous load: j = 0 -> E[ow], 1 -> O[ow], 2 -> E[ow + 1].
// Forward: V outputs sum their 9 taps in registers in (i, j) order, 2 rows x 2 blocks at a time
// (independent FMA chains). dw: each dy vector times the same three loads per kernel row into 9
// vector accumulators per plane (flushed to double per sample). dx: input pixel (r, c) takes the
// taps with i = r and j = c (mod 2) (1, 2, 2 or 4: 9 per 2x2 block), gathered in registers from a
// zero-padded copy of the dy plane; the two column phases are zipped into the row, each dx element
// written once. Padding zeros enter dw's and dx's sums only as products 0 * v: exact unless v is not
// finite, so a plane whose dw is not finite is redone exactly (dx: a non-finite w takes the exact
// scatter). Floors and measurements: benchmarks/results/conv.md ("Depthwise 3x3 stride 2 in phases").
#include "cpu/conv2d/conv2d_depthwise_common.h"

namespace dk::cpu::DK_DW_NS {

inline bool s2_phase_applies(const Conv2dParams& p) {
  return p.sh == 2 && p.sw == 2 && p.kh == 3 && p.kw == 3 && p.dh == 1 && p.dw == 1 && p.ph <= 2 && p.pw <= 2 &&
         p.Ho >= 1 && p.Wo >= 1;
}

// Per-call sizes of the phase buffers (V lanes of T).
struct S2Geom {
  int64_t nv;            // output vectors per row: cdiv(Wo, V)
  int64_t nx;            // dx vectors per column phase and row: cdiv(cdiv(W, 2), V)
  int64_t np;            // input row pairs of vectors split per row: cdiv(W, 2V)
  int64_t Lp;            // one phase row of the split input
  int64_t rows;          // padded input rows any output reads: 2 Ho + 1
  int64_t Ld;            // a row of the padded dy copy (a zero column before, zeros after)
  bool even_to_o;        // odd pw: x's even columns are the padded odd ones
  int64_t off_e, off_o;  // where x's even / odd columns start in their phase row
  int64_t cnt_e, cnt_o;  // how many of them any output reads (the rest stay zero)
};

template <int V>
inline S2Geom s2_geom(const Conv2dParams& p) {
  S2Geom g;
  g.nv = cdiv(p.Wo, V);
  g.nx = cdiv(cdiv(p.W, 2), V);
  g.np = cdiv(p.W, 2 * V);
  g.Lp = cdiv(dmax(1 + g.np * V, g.nv * V + 1), V) * V;
  g.rows = 2 * p.Ho + 1;
  g.Ld = 2 + dmax(g.nv, g.nx) * V;
  g.even_to_o = p.pw % 2 == 1;
  g.off_e = p.pw / 2;
  g.off_o = (p.pw + 1) / 2;
  // E[0, Wo] and O[0, Wo) are read
  const int64_t end_of_e_dest = g.even_to_o ? p.Wo : p.Wo + 1, end_of_o_dest = g.even_to_o ? p.Wo + 1 : p.Wo;
  g.cnt_e = dmax(0, dmin(cdiv(p.W, 2), end_of_e_dest - g.off_e));
  g.cnt_o = dmax(0, dmin(p.W / 2, end_of_o_dest - g.off_o));
  return g;
}

// v with its lanes from n on zeroed (bitwise: an Inf or NaN there goes too).
template <typename T, int V, typename TV>
inline TV keep_first(TV v, int64_t n) {
  typedef typename UintOf<sizeof(T)>::type U;
  typedef U UV __attribute__((vector_size(V * sizeof(T))));
  if (n >= V) return v;
  UV idx, bits;
  for (int l = 0; l < V; ++l) idx[l] = U(l);
  const UV m = (UV)(idx < U(n < 0 ? 0 : n));
  std::memcpy(&bits, &v, sizeof bits);
  bits &= m;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// Input plane x (H x W) -> phase rows of xb (row r: E at xb + 2 r Lp, O at + Lp). Rows whose whole
// vectors would read past the plane go through tmp (2 V np elements).
template <typename T, int V>
void s2_split_plane(const Conv2dParams& p, const S2Geom& g, const T* x, T* xb, T* tmp) {
  typedef T TV __attribute__((vector_size(V * sizeof(T))));
  const int64_t last = p.H * p.W;
  for (int64_t ih = 0; ih < p.H; ++ih) {
    const int64_t r = ih + p.ph;
    if (r >= g.rows) break;
    const T* src = x + ih * p.W;
    if (ih * p.W + 2 * V * g.np > last) {
      std::memcpy(tmp, src, sizeof(T) * size_t(p.W));
      src = tmp;
    }
    T* e = xb + 2 * r * g.Lp;
    T* de = (g.even_to_o ? e + g.Lp : e) + g.off_e;
    T* dd = (g.even_to_o ? e : e + g.Lp) + g.off_o;
    for (int64_t k = 0; k < g.np; ++k) {
      TV a, b;
      std::memcpy(&a, src + 2 * k * V, sizeof a);
      std::memcpy(&b, src + 2 * k * V + V, sizeof b);
      const TV ev = keep_first<T, V>(permute2<Even, V>(a, b), g.cnt_e - k * V);
      const TV od = keep_first<T, V>(permute2<Odd, V>(a, b), g.cnt_o - k * V);
      std::memcpy(de + k * V, &ev, sizeof ev);
      std::memcpy(dd + k * V, &od, sizeof od);
    }
  }
}

// R rows x B blocks of V outputs (rows oh.., blocks starting at columns c[b]) from the split input.
template <typename T, int V, int R, int B>
inline void s2_fwd_tile(const S2Geom& g, const T* xb, int64_t oh, const int64_t* c, const T* wk, T bias,
                        T* const* out) {
  typedef T TV __attribute__((vector_size(V * sizeof(T))));
  TV acc[R][B];
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < B; ++b) acc[r][b] = TV{} + bias;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      const T wv = wk[i * 3 + j];
      for (int r = 0; r < R; ++r) {
        const T* src = xb + 2 * (2 * (oh + r) + i) * g.Lp + (j == 1 ? g.Lp : 0) + (j == 2 ? 1 : 0);
        for (int b = 0; b < B; ++b) {
          TV v;
          std::memcpy(&v, src + c[b], sizeof v);
          acc[r][b] += wv * v;
        }
      }
    }
  for (int r = 0; r < R; ++r)
    for (int b = 0; b < B; ++b) std::memcpy(out[r * B + b], &acc[r][b], sizeof acc[r][b]);
}

// One output plane from the split input: blocks at 0, V, ..., the last at Wo - V (overlapping the
// one before; same sums again). Rows narrower than V go through a row buffer.
template <typename T, int V>
void s2_fwd_plane(const Conv2dParams& p, const S2Geom& g, const T* xb, const T* wk, T bias, T* y) {
  if (p.Wo < V) {
    T row[V];
    T* o[1] = {row};
    const int64_t c0[1] = {0};
    for (int64_t oh = 0; oh < p.Ho; ++oh) {
      s2_fwd_tile<T, V, 1, 1>(g, xb, oh, c0, wk, bias, o);
      std::memcpy(y + oh * p.Wo, row, sizeof(T) * size_t(p.Wo));
    }
    return;
  }
  for (int64_t oh = 0; oh < p.Ho; oh += 2) {
    const bool two = oh + 1 < p.Ho;
    for (int64_t k = 0; k < g.nv; k += 2) {
      const bool pair = k + 1 < g.nv;
      const int64_t c[2] = {dmin(k * V, p.Wo - V), dmin((k + 1) * V, p.Wo - V)};
      T* y0 = y + oh * p.Wo;
      T* y1 = two ? y0 + p.Wo : y0;
      T* o[4] = {y0 + c[0], y0 + c[1], y1 + c[0], y1 + c[1]};
      if (two && pair) {
        s2_fwd_tile<T, V, 2, 2>(g, xb, oh, c, wk, bias, o);
      } else if (two) {
        T* o2[2] = {o[0], o[2]};
        s2_fwd_tile<T, V, 2, 1>(g, xb, oh, c, wk, bias, o2);
      } else if (pair) {
        s2_fwd_tile<T, V, 1, 2>(g, xb, oh, c, wk, bias, o);
      } else {
        s2_fwd_tile<T, V, 1, 1>(g, xb, oh, c, wk, bias, o);
      }
    }
  }
}

template <typename T>
void s2_forward(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  constexpr int V = kDwVecBytes / sizeof(T);
  const S2Geom g = s2_geom<V>(p);
  const int64_t m = p.K / p.C;
#pragma omp parallel num_threads(team(dw_parallel(p) ? num_threads() : 1))
  {
    // new[], not std::vector: no std:: template in an ISA copy; zeroed once: padding stays zero
    T* xb = new T[size_t(g.rows * 2 * g.Lp)]();
    T* tmp = new T[size_t(2 * V * g.np)]();
#pragma omp for schedule(static)
    for (int64_t pl = 0; pl < p.N * p.C; ++pl) {
      s2_split_plane<T, V>(p, g, x + pl * p.in_plane(), xb, tmp);
      const int64_t n = pl / p.C, c = pl % p.C;
      for (int64_t q = 0; q < m; ++q) {
        const int64_t k = c * m + q;
        s2_fwd_plane<T, V>(p, g, xb, w + 9 * k, b ? b[k] : T(0), y + (n * p.K + k) * p.out_plane());
      }
    }
    delete[] tmp;
    delete[] xb;
  }
}

}  // namespace dk::cpu::DK_DW_NS

#include "cpu/conv2d/conv2d_depthwise_s2_backward.h"
