#pragma once
// 2-D convolution forward and backward on the CPU (T = float or double), NCHW, weights
// (K, C, kh, kw). Lowered to the library GEMM (gemm.h) through im2col over bounded chunks of
// output rows, or straight to GEMM for 1x1 stride-1 convolutions.
#include <cstdint>

#include "common/conv_params.h"

namespace dk::cpu {

// y = conv(x, w) + b; b may be null.
template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y);

// Gradients of sum(y * dy); any of dx, dw, db may be null (not wanted). All are overwritten.
template <typename T>
void conv2d_backward(const Conv2dParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db);

// The lowering each pass takes for this shape and element type with nt threads (finite inputs):
// forward "winograd" | "shifted" | "unfolded" | "im2col" | "pointwise" | "depthwise";
// dx the same names or "shifted_scatter" (strided: w^T dy added back in the phase layout);
// dw "winograd" | "shifted_rows" | "shifted_gemm" | "im2col" | "pointwise" | "depthwise". G > 1 (not
// depthwise): each group's. For tests and benchmarks; the passes decide for themselves.
struct Conv2dPlan {
  const char *forward, *dx, *dw;
};
template <typename T>
Conv2dPlan conv2d_plan(const Conv2dParams& p, int nt);

}  // namespace dk::cpu
