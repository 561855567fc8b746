#pragma once
// im2col / col2im of one whole small image plane through a zero-padded copy of it. The row-wise
// lowering (conv2d_im2col.h) spends its time on bounds and calls per output row, which for small
// images are a few elements long (a 4x4 output: 36 rows of 4 per channel); here every tap is a
// branch-free copy from (or add into) the padded plane. Same column-matrix layout as im2col.
#include <algorithm>
#include <cstdint>

#include "common/conv_params.h"

namespace dk::cpu {

// The padded plane holds the input rows and columns the windows reach, plus their padding:
// plane row r is input row r - ph, plane column q input column q - pw.
inline int64_t plane_rows(const Conv2dParams& p) { return (p.Ho - 1) * p.sh + (p.kh - 1) * p.dh + 1; }
inline int64_t plane_cols(const Conv2dParams& p) { return (p.Wo - 1) * p.sw + (p.kw - 1) * p.dw + 1; }

constexpr int64_t kPlaneMax = 4096;  // elements of the padded plane (a stack buffer)

// Whole-image items whose output rows are short (where the row-wise copies cost the most).
inline bool plane_lowering_applies(const Conv2dParams& p, int64_t oh0, int64_t oh1) {
  return oh0 == 0 && oh1 == p.Ho && p.Wo <= 16 && plane_rows(p) * plane_cols(p) <= kPlaneMax;
}

// Copies (or adds) `rows` rows of `w` elements, row strides ss (source) and ds (destination).
// Short rows get a loop of fixed length: a loop of run-time length compiles to a memcpy call per
// row, which costs more than the row itself.
template <bool Add, int Fixed, typename T>
void rows_fixed(const T* s, int64_t ss, T* d, int64_t ds, int64_t rows) {
  for (int64_t r = 0; r < rows; ++r, s += ss, d += ds)
    for (int q = 0; q < Fixed; ++q) {
      if constexpr (Add)
        d[q] += s[q];
      else
        d[q] = s[q];
    }
}

template <bool Add, int Fixed = 1, typename T>
void copy_rows(const T* s, int64_t ss, T* d, int64_t ds, int64_t rows, int64_t w) {
  if constexpr (Fixed <= 16) {
    if (w == Fixed) return rows_fixed<Add, Fixed>(s, ss, d, ds, rows);
    return copy_rows<Add, Fixed + 1>(s, ss, d, ds, rows, w);
  } else {
    for (int64_t r = 0; r < rows; ++r, s += ss, d += ds)
      for (int64_t q = 0; q < w; ++q) {
        if constexpr (Add)
          d[q] += s[q];
        else
          d[q] = s[q];
      }
  }
}

// pad = input plane xc with its zero padding, rows [0, plane_rows), columns [0, plane_cols).
template <typename T>
void pad_plane(const Conv2dParams& p, const T* xc, T* pad) {
  const int64_t R = plane_rows(p), Q = plane_cols(p);
  std::fill(pad, pad + R * Q, T(0));
  // input rows [0, hr) and columns [0, wc) land in the plane
  const int64_t hr = std::clamp<int64_t>(R - p.ph, 0, p.H), wc = std::clamp<int64_t>(Q - p.pw, 0, p.W);
  if (hr > 0 && wc > 0) copy_rows<false>(xc, p.W, pad + p.ph * Q + p.pw, Q, hr, wc);
}

// Rows [c*kh*kw, (c+1)*kh*kw) of the column matrix (leading dimension ld) from channel c's padded plane.
template <typename T>
void im2col_plane(const Conv2dParams& p, const T* pad, T* col, int64_t ld) {
  const int64_t Q = plane_cols(p), Wo = p.Wo;
  for (int64_t i = 0; i < p.kh; ++i)
    for (int64_t j = 0; j < p.kw; ++j) {
      T* row = col + (i * p.kw + j) * ld;
      const T* base = pad + i * p.dh * Q + j * p.dw;
      if (p.sw == 1) {
        copy_rows<false>(base, p.sh * Q, row, Wo, p.Ho, Wo);
        continue;
      }
      for (int64_t oh = 0; oh < p.Ho; ++oh) {
        const T* s = base + oh * p.sh * Q;
        T* d = row + oh * Wo;
        for (int64_t ow = 0; ow < Wo; ++ow) d[ow] = s[ow * p.sw];
      }
    }
}

// The adjoint: channel c's rows of the column matrix summed into the padded plane `acc` (zeroed
// first), then its inner part added to dxc.
template <typename T>
void col2im_plane(const Conv2dParams& p, const T* col, int64_t ld, T* acc, T* dxc) {
  const int64_t R = plane_rows(p), Q = plane_cols(p), Wo = p.Wo;
  std::fill(acc, acc + R * Q, T(0));
  // taps of one column offset j in a row: adds to a row at another offset right after its last
  // store would load across that store (a store-forwarding stall each)
  for (int64_t j = 0; j < p.kw; ++j)
    for (int64_t i = 0; i < p.kh; ++i) {
      const T* row = col + (i * p.kw + j) * ld;
      T* base = acc + i * p.dh * Q + j * p.dw;
      if (p.sw == 1) {
        copy_rows<true>(row, Wo, base, p.sh * Q, p.Ho, Wo);
        continue;
      }
      for (int64_t oh = 0; oh < p.Ho; ++oh) {
        T* d = base + oh * p.sh * Q;
        const T* s = row + oh * Wo;
        for (int64_t ow = 0; ow < Wo; ++ow) d[ow * p.sw] += s[ow];
      }
    }
  const int64_t hr = std::clamp<int64_t>(R - p.ph, 0, p.H), wc = std::clamp<int64_t>(Q - p.pw, 0, p.W);
  if (hr > 0 && wc > 0) copy_rows<true>(acc + p.ph * Q + p.pw, Q, dxc, p.W, hr, wc);
}

}  // namespace dk::cpu
