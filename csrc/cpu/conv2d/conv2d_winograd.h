#pragma once
// Winograd minimal filtering for stride-1, undilated convolutions: the input in overlapping 6x6
// tiles, each transformed (B^T d B), multiplied channel-wise with the transformed weights
// (G g G^T) as 36 GEMMs, and transformed back (A^T M A). F(4x4, 3x3) for 3x3: 36 multiply-adds
// per 16 outputs and channel pair instead of 144; F(2x2, 5x5) for 5x5 (same 6x6 input tiles):
// 36 per 4 instead of 100. The weight gradient: F(3x3, 4x4) with dy as the filter on the same tiles
// (5x5 as four shifted 3x3 blocks), 2.25 (3x3) or 9 (5x5) multiply-adds per output and channel pair
// instead of 9 or 25 (conv2d_winograd_dw_impl.h). Measurements: benchmarks/results/conv.md, "Winograd".
#include <cstdint>

#include "common/conv_params.h"

namespace dk::cpu {

// Output tile of the Winograd kernel for this convolution: 4 (3x3), 2 (5x5), or 0 (none).
inline int winograd_tile(const Conv2dParams& p) {
  if (p.G != 1 || p.kh != p.kw || p.sh != 1 || p.sw != 1 || p.dh != 1 || p.dw != 1) return 0;
  return p.kh == 3 ? 4 : p.kh == 5 ? 2 : 0;
}

// Tile rows per work item (one sample's band): ~96 tiles, so that the item's transformed input
// and products (36 matrices each) stay near L2.
inline int64_t winograd_band_rows(int64_t tile_rows, int64_t tile_cols) {
  const int64_t r = (96 + tile_cols - 1) / tile_cols;
  return r < 1 ? 1 : r > tile_rows ? tile_rows : r;
}

// Whether Winograd runs a convolution (x and w finite besides): conv2d_winograd.cpp.
bool winograd_pays(const Conv2dParams& p, int64_t elem_bytes);

// Whether the weight gradient runs on Winograd (x and dy finite besides): conv2d_winograd.cpp.
bool winograd_dw_pays(const Conv2dParams& p, int64_t elem_bytes);

// dw = the weight gradient of sum(y * dy) (overwritten), for winograd_tile(p) > 0 or, grouped, for
// winograd_grouped_dw_pays (conv2d_winograd_grouped.h): groups as an outer dimension; x and dy finite.
template <typename T>
void conv2d_weight_grad_winograd(const Conv2dParams& p, const T* x, const T* dy, T* dw);

// y = conv(x, w) + b (b may be null), for winograd_tile(p) > 0.
// x and w finite (the transforms add inputs, so one Inf would smear NaN over its tile).
template <typename T>
void conv2d_forward_winograd(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y);

}  // namespace dk::cpu
