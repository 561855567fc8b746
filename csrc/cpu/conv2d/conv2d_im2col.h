#pragma once
// im2col / col2im over a band of output rows [oh0, oh1) of one sample, and a channel range
// [c0, c1) (so callers can split the work by channel without races in col2im).
// Row r = (c*kh + i)*kw + j of the column matrix holds, for every output position p in the
// band, the input value the kernel tap (i, j) of channel c sees there (0 in the padding).
// col has leading dimension ld >= (oh1 - oh0) * Wo (larger when several samples share a matrix).
// Whole small images go through a padded copy of each plane instead (conv2d_plane.h).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/conv_params.h"
#include "cpu/conv2d/conv2d_plane.h"

namespace dk::cpu {

// Output columns ow in [lo, hi) read input column ow*sw - pw + j*dw inside [0, W).
inline void valid_ow(const Conv2dParams& p, int64_t j, int64_t& lo, int64_t& hi) {
  const int64_t off = j * p.dw - p.pw;  // iw = ow*sw + off
  lo = off >= 0 ? 0 : (-off + p.sw - 1) / p.sw;
  hi = p.W - off <= 0 ? 0 : (p.W - off + p.sw - 1) / p.sw;
  hi = std::min(hi, p.Wo);
  lo = std::min(lo, hi);
}

template <typename T>
void im2col(const Conv2dParams& p, const T* x, int64_t oh0, int64_t oh1, int64_t c0, int64_t c1, T* col, int64_t ld) {
  if (plane_lowering_applies(p, oh0, oh1)) {
    alignas(64) T pad[kPlaneMax];
    for (int64_t c = c0; c < c1; ++c) {
      pad_plane(p, x + c * p.in_plane(), pad);
      im2col_plane(p, pad, col + c * p.kh * p.kw * ld, ld);
    }
    return;
  }
  for (int64_t c = c0; c < c1; ++c) {
    const T* xc = x + c * p.in_plane();
    for (int64_t i = 0; i < p.kh; ++i)
      for (int64_t j = 0; j < p.kw; ++j) {
        T* row = col + ((c * p.kh + i) * p.kw + j) * ld;
        int64_t lo, hi;
        valid_ow(p, j, lo, hi);
        const int64_t off = j * p.dw - p.pw;
        for (int64_t oh = oh0; oh < oh1; ++oh, row += p.Wo) {
          const int64_t ih = oh * p.sh - p.ph + i * p.dh;
          if (ih < 0 || ih >= p.H) {
            std::fill(row, row + p.Wo, T(0));
            continue;
          }
          const T* xr = xc + ih * p.W + off;
          std::fill(row, row + lo, T(0));
          if (p.sw == 1)
            std::memcpy(row + lo, xr + lo, sizeof(T) * (hi - lo));
          else
            for (int64_t ow = lo; ow < hi; ++ow) row[ow] = xr[ow * p.sw];
          std::fill(row + hi, row + p.Wo, T(0));
        }
      }
  }
}

// dx[c] += the column matrix scattered back (the adjoint of im2col), channels [c0, c1).
template <typename T>
void col2im_add(const Conv2dParams& p, const T* col, int64_t oh0, int64_t oh1, int64_t c0, int64_t c1, T* dx,
                int64_t ld) {
  if (plane_lowering_applies(p, oh0, oh1)) {
    alignas(64) T acc[kPlaneMax];
    for (int64_t c = c0; c < c1; ++c) col2im_plane(p, col + c * p.kh * p.kw * ld, ld, acc, dx + c * p.in_plane());
    return;
  }
  for (int64_t c = c0; c < c1; ++c) {
    T* dc = dx + c * p.in_plane();
    for (int64_t i = 0; i < p.kh; ++i)
      for (int64_t j = 0; j < p.kw; ++j) {
        const T* row = col + ((c * p.kh + i) * p.kw + j) * ld;
        int64_t lo, hi;
        valid_ow(p, j, lo, hi);
        const int64_t off = j * p.dw - p.pw;
        for (int64_t oh = oh0; oh < oh1; ++oh, row += p.Wo) {
          const int64_t ih = oh * p.sh - p.ph + i * p.dh;
          if (ih < 0 || ih >= p.H) continue;
          T* dr = dc + ih * p.W + off;
          if (p.sw == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) dr[ow] += row[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dr[ow * p.sw] += row[ow];
          }
        }
      }
  }
}

}  // namespace dk::cpu
