#pragma once
// The depthwise forward's register-blocked rows (conv2d_depthwise_impl.h): one output row of a
// zero-padded input as vector blocks that keep their sums in registers across all kh*kw taps.
// The forward and the stride-1 backward's dx (conv2d_depthwise_s1_backward.h) run on them.
#include "cpu/conv2d/conv2d_depthwise_common.h"

namespace dk::cpu::DK_DW_NS {

// U blocks of V outputs each, block u at columns col[u], col[u] + s, ...: sum over rows
// [i_lo, i_hi) and all kw taps. The U sums are independent chains of FMAs (one block alone waits
// on each FMA's latency); every output still adds its taps in (i, j) order.
template <typename T, int S, int V, int U>
inline void fwd_blocks(const T* xc, const T* wk, const Conv2dParams& p, int64_t h0, int64_t i_lo, int64_t i_hi,
                       const int64_t* col, T bias, T* const* y) {
  typedef T TV __attribute__((vector_size(V * sizeof(T))));
  const int64_t s = S > 0 ? S : p.sw;
  // a broadcast (x - 0 is x, -0 included); GCC built a lane-by-lane fill of 16 masked moves per
  // block from a loop over the lanes, more instructions than the block's FMAs
  const TV bv = bias - TV{};
  TV acc[U];
  for (int u = 0; u < U; ++u) acc[u] = bv;
  for (int64_t i = i_lo; i < i_hi; ++i) {
    const T* xr = xc + (h0 + i * p.dh) * p.W;
    for (int64_t j = 0; j < p.kw; ++j) {
      const T wv = wk[i * p.kw + j];
      for (int u = 0; u < U; ++u) acc[u] += wv * load_strided<TV, T, S, V>(xr + col[u] + j * p.dw, s);
    }
  }
  for (int u = 0; u < U; ++u) std::memcpy(y[u], &acc[u], sizeof acc[u]);
}

// The nb blocks of one output row starting at output columns ob[0..nb), in groups of up to 4.
template <typename T, int S, int V>
inline void fwd_row_blocks(const T* xc, const T* wk, const Conv2dParams& p, int64_t h0, int64_t i_lo, int64_t i_hi,
                           const int64_t* ob, int64_t nb, T bias, T* yr) {
  constexpr int U = 4;
  for (int64_t b0 = 0; b0 < nb; b0 += U) {
    int64_t col[U];
    T* yo[U];
    const int n = int(dmin(U, nb - b0));
    for (int u = 0; u < n; ++u) {
      col[u] = ob[b0 + u] * p.sw - p.pw;
      yo[u] = yr + ob[b0 + u];
    }
    if (n == 4)
      fwd_blocks<T, S, V, 4>(xc, wk, p, h0, i_lo, i_hi, col, bias, yo);
    else if (n == 3)
      fwd_blocks<T, S, V, 3>(xc, wk, p, h0, i_lo, i_hi, col, bias, yo);
    else if (n == 2)
      fwd_blocks<T, S, V, 2>(xc, wk, p, h0, i_lo, i_hi, col, bias, yo);
    else
      fwd_blocks<T, S, V, 1>(xc, wk, p, h0, i_lo, i_hi, col, bias, yo);
  }
}

// Two output rows at once for stride 1 and dilation 1 in rows and columns: U blocks of each (2U
// independent FMA chains) from the kh + 1 input rows from xc on (p.W apart), each input vector loaded
// once for both rows: input row r is kernel row r of the first and r - 1 of the second. Each output
// adds its taps in the same (i, j) order as fwd_blocks, so the sums are the same bits. K > 0: a K x K
// kernel known at compile time (the loops unrolled, the row tests resolved); 0: p.kh x p.kw.
template <typename T, int V, int U, int K>
inline void fwd_blocks_pair(const T* xc, const T* wk, const Conv2dParams& p, const int64_t* col, T bias, T* const* y0,
                            T* const* y1) {
  typedef T TV __attribute__((vector_size(V * sizeof(T))));
  const int64_t kh = K > 0 ? K : p.kh, kw = K > 0 ? K : p.kw;
  const TV bv = bias - TV{};
  TV a0[U], a1[U];
  for (int u = 0; u < U; ++u) a0[u] = a1[u] = bv;
  for (int64_t r = 0; r <= kh; ++r) {
    const T* xr = xc + r * p.W;
    for (int64_t j = 0; j < kw; ++j) {
      TV v[U];
      for (int u = 0; u < U; ++u) std::memcpy(&v[u], xr + col[u] + j, sizeof v[u]);
      if (r < kh) {
        const T w0 = wk[r * kw + j];
        for (int u = 0; u < U; ++u) a0[u] += w0 * v[u];
      }
      if (r > 0) {
        const T w1 = wk[(r - 1) * kw + j];
        for (int u = 0; u < U; ++u) a1[u] += w1 * v[u];
      }
    }
  }
  for (int u = 0; u < U; ++u) {
    std::memcpy(y0[u], &a0[u], sizeof a0[u]);
    std::memcpy(y1[u], &a1[u], sizeof a1[u]);
  }
}

// Whether fwd_row_pair_blocks serves p's rows.
inline bool fwd_pairs(const Conv2dParams& p) { return p.sh == 1 && p.sw == 1 && p.dh == 1 && p.dw == 1; }

// fwd_row_blocks for output rows yr0 and yr1 = the next (fwd_pairs(p); xc: the first one's input).
template <typename T, int V>
inline void fwd_row_pair_blocks(const T* xc, const T* wk, const Conv2dParams& p, const int64_t* ob, int64_t nb, T bias,
                                T* yr0, T* yr1) {
  constexpr int U = 4;
  for (int64_t b0 = 0; b0 < nb; b0 += U) {
    int64_t col[U];
    T *y0[U], *y1[U];
    const int n = int(dmin(U, nb - b0));
    for (int u = 0; u < n; ++u) {
      col[u] = ob[b0 + u] - p.pw;
      y0[u] = yr0 + ob[b0 + u];
      y1[u] = yr1 + ob[b0 + u];
    }
    if (n == 4 && p.kh == 3 && p.kw == 3)  // the common depthwise kernel, and full groups of 4 blocks
      fwd_blocks_pair<T, V, 4, 3>(xc, wk, p, col, bias, y0, y1);
    else if (n == 4)
      fwd_blocks_pair<T, V, 4, 0>(xc, wk, p, col, bias, y0, y1);
    else if (n == 3)
      fwd_blocks_pair<T, V, 3, 0>(xc, wk, p, col, bias, y0, y1);
    else if (n == 2)
      fwd_blocks_pair<T, V, 2, 0>(xc, wk, p, col, bias, y0, y1);
    else
      fwd_blocks_pair<T, V, 1, 0>(xc, wk, p, col, bias, y0, y1);
  }
}

// Output columns [0, Wo) of one row on a padded input (every tap live), one at a time: rows
// narrower than one vector block.
template <typename T>
DK_DW_NO_VECTORIZE void fwd_row_scalar(const Conv2dParams& p, const T* xr, int64_t Wp, const T* wk, T bias, T* yr) {
  for (int64_t ow = 0; ow < p.Wo; ++ow) {
    T acc = bias;
    for (int64_t i = 0; i < p.kh; ++i)
      for (int64_t j = 0; j < p.kw; ++j) acc += wk[i * p.kw + j] * xr[i * p.dh * Wp + ow * p.sw + j * p.dw];
    yr[ow] = acc;
  }
}

}  // namespace dk::cpu::DK_DW_NS
