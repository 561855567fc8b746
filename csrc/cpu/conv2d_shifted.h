#pragma once
// Stride-1 convolution as a "shifted GEMM": with the input zero-padded to Hp x Wp and output
// positions numbered q = oh*Wp + ow, row (c, i, j) of the im2col matrix is the padded input
// read from offset c*Hp*Wp + i*dh*Wp + j*dw onwards. The micro-kernel reads those rows in place
// (GemmKernel::fn_shifted), so neither an im2col matrix nor a packed B panel is ever built.
// Columns with ow >= Wo are computed and dropped (Wp/Wo - 1 extra work, e.g. 6% for 3x3 on 32x32).
#include "common/conv_params.h"

namespace dk::cpu {

// Strides > 1 split the padded input into sh*sw phase images (phase (a, b) holds rows a, a+sh,
// ... and columns b, b+sw, ...); every tap then reads one phase at stride 1, so the same kernel
// serves any stride. Each phase is ceil(padded size / stride) long on each axis.
inline int64_t shifted_phase_size(int64_t padded, int64_t stride) { return (padded + stride - 1) / stride; }

// Used unless the padded-width columns it computes and drops would more than double the work
// (tiny outputs: im2col is cheaper there), or the convolution is a plain GEMM already
// (1x1, stride 1, no padding). Measured: 5x5 on 14x14 (Wq 14 vs Wo 10) still wins 2x.
inline bool shifted_applies(const Conv2dParams& p) {
  if (p.is_pointwise()) return false;
  const int64_t wq = shifted_phase_size(p.W + 2 * p.pw, p.sw);
  const int64_t q = (p.Ho - 1) * wq + p.Wo + 32;  // + one NR panel of rounding
  return q <= 2 * p.Ho * p.Wo;
}

// y = conv(x, w) + b (b may be null).
template <typename T>
void conv2d_forward_shifted(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y);

// dx (N, C, H, W) of sum(y * dy), overwritten; same applicability as the forward. The dropped
// columns contribute w^T * 0, so w must be finite (the caller checks).
template <typename T>
void conv2d_input_grad_shifted(const Conv2dParams& p, const T* w, const T* dy, T* dx);

// dw (K, C, kh, kw) of sum(y * dy), overwritten; same applicability as the forward.
template <typename T>
void conv2d_weight_grad_shifted(const Conv2dParams& p, const T* x, const T* dy, T* dw);

}  // namespace dk::cpu
