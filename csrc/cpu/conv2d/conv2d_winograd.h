#pragma once
// Winograd minimal filtering F(4x4, 3x3) for stride-1, undilated 3x3 convolutions: the input
// in overlapping 6x6 tiles, each transformed (B^T d B), multiplied channel-wise with the
// transformed weights (G g G^T) as 36 GEMMs, and transformed back (A^T M A): 36 multiply-adds
// per 16 outputs and channel pair instead of 144. Measurements: benchmarks/results/conv.md.
#include <cstdint>

#include "common/conv_params.h"

namespace dk::cpu {

// Whether Winograd runs a convolution (x and w finite besides). float32 sums over more than
// 64 channels stay direct: F(4x4, 3x3) rounds more than the direct sum, the more so the more
// channels it sums (its worst error reaches 0.6 of the tests' float32 tolerance at 64, 0.84 at 128). Cost in
// multiply-adds: the 36 GEMMs (channels rounded to 16) plus the transforms (1000 per tile and input channel, 350 per
// output channel), against 9 per output and channel pair directly, with a 1.3x margin for the direct GEMM's better
// rate. The measurements behind both: benchmarks/results/conv.md, "Winograd".
inline bool winograd_pays(const Conv2dParams& p, int64_t elem_bytes) {
  if (p.G != 1 || p.kh != 3 || p.kw != 3 || p.sh != 1 || p.sw != 1 || p.dh != 1 || p.dw != 1) return false;
  if (elem_bytes == 4 && p.C > 64) return false;
  const auto up16 = [](int64_t v) { return double((v + 15) / 16 * 16); };
  const double tiles = double((p.Ho + 3) / 4) * double((p.Wo + 3) / 4);
  const double wino = tiles * (36.0 * up16(p.C) * up16(p.K) + 1000.0 * up16(p.C) + 350.0 * up16(p.K));
  const double direct = 9.0 * double(p.out_plane()) * double(p.C) * double(p.K);
  return 1.3 * wino < direct;
}

// y = conv(x, w) + b (b may be null), for kh = kw = 3, stride 1, dilation 1, G = 1.
// x and w finite (the transforms add inputs, so one Inf would smear NaN over its tile).
template <typename T>
void conv2d_forward_winograd(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y);

}  // namespace dk::cpu
