#pragma once
// Shapes and parameters of a 2-D convolution (PyTorch's cross-correlation) over NCHW input
// with (K, C/G, kh, kw) weights. Validated in Python; kernels trust them. 64-bit everywhere.
#include <cstdint>

#include "common/host_device.h"

namespace dk {

struct Conv2dParams {
  int64_t N, C, H, W;  // input
  int64_t K, kh, kw;   // output channels, kernel window
  int64_t Ho, Wo;      // output
  int64_t sh, sw;      // stride
  int64_t ph, pw;      // zero padding
  int64_t dh, dw;      // dilation
  // Groups: channels [g*C/G, (g+1)*C/G) feed outputs [g*K/G, (g+1)*K/G); w is (K, C/G, kh, kw).
  // The GEMM lowerings take G == 1; conv2d.cpp splits other calls (depthwise: its own kernel).
  int64_t G = 1;

  DK_HOST_DEVICE int64_t in_plane() const { return H * W; }
  DK_HOST_DEVICE int64_t out_plane() const { return Ho * Wo; }
  DK_HOST_DEVICE int64_t crs() const { return C / G * kh * kw; }  // GEMM inner dimension (one group's)
  // Every group has one input channel (K = m*C: each channel feeds m outputs of its own).
  DK_HOST_DEVICE bool is_depthwise() const { return G > 1 && G == C; }
  // 1x1, stride 1, no padding: the input plane is already the im2col matrix.
  DK_HOST_DEVICE bool is_pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

}  // namespace dk
