#pragma once
// 1x1 convolutions with a stride or padding (resnet's 1x1/2 downsample): each output position reads
// one input column, so the column matrix is x gathered at the strided positions, [C, Ho*Wo], and
// the forward is one packed GEMM per sample (or band of output rows) on it. The bias is one more
// inner row: w gets b as an extra column and the gathered matrix a row of ones.
// The shifted GEMM reads the same matrix in place (its phase width is the output width), but its
// B rows stride through the whole buffer and its weights (K x C) stream through L2 for every
// output panel: on Zen 3 it ran at ~75% of the packed GEMM's rate on resnet's 1x1/2 256 -> 512
// (benchmarks/results/conv.md, "1x1 stride 2 by gather + GEMM").
#include "common/conv_params.h"

namespace dk::cpu {

// Output positions per sample below which the shifted GEMM keeps small images (one thin GEMM per
// sample would pay its edge tiles and packing for few columns).
inline constexpr int64_t kGatherMinCols = 256;

inline bool pointwise_gather_applies(const Conv2dParams& p) {
  return p.kh == 1 && p.kw == 1 && !p.is_pointwise() && p.G == 1 && p.out_plane() >= kGatherMinCols;
}

// y = conv(x, w) + b (b may be null).
template <typename T>
void conv2d_forward_pointwise_gather(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y);

}  // namespace dk::cpu
