#pragma once
// Stride-2 convolutions as a GEMM with the output positions as its rows and the output channels as
// its columns: y^T[positions, K] = col[positions, C*kh*kw] * w^T. A tile's MR positions each
// broadcast their input values from their own place in a zero-padded copy of the input rows, so the
// stride costs nothing: no phase split, no columns computed and dropped, no compaction, and K
// (resnet's 64 .. 512) fills whole NR-wide panels where as GEMM rows it rounds up to MR = 6.
// The tiles are transposed into y as they finish. Measurements: benchmarks/results/conv.md,
// "Stride 2, positions as rows".
#include "common/conv_params.h"

namespace dk::cpu {

// Stride 2 on both axes with enough channels (C >= 16, K >= 16), not 1x1.
bool posrows_applies(const Conv2dParams& p);

// y = conv(x, w) + b (b may be null); G == 1.
template <typename T>
void conv2d_forward_posrows(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y);

// dw (K, C, kh, kw) of the same convolutions, overwritten: taps as the tile's rows, output channels as
// its columns, output positions as the inner dimension. Any x and dy. Where the output has at least
// 128 positions or the input 128 channels: below both (small images, few channels) the shifted
// GEMM's dw was as fast or up to 15% faster on AVX-512 (benchmarks/results/conv.md, "dw of stride 2").
bool posrows_dw_applies(const Conv2dParams& p);

template <typename T>
void conv2d_weight_grad_posrows(const Conv2dParams& p, const T* x, const T* dy, T* dw);

}  // namespace dk::cpu
