#pragma once
// Shapes and parameters of a 2-D convolution (PyTorch's cross-correlation) over NCHW input
// with (K, C, kh, kw) weights. Validated in Python; kernels trust them. 64-bit everywhere.
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

  DK_HOST_DEVICE int64_t in_plane() const { return H * W; }
  DK_HOST_DEVICE int64_t out_plane() const { return Ho * Wo; }
  DK_HOST_DEVICE int64_t crs() const { return C * kh * kw; }  // GEMM inner dimension
  // 1x1, stride 1, no padding: the input plane is already the im2col matrix.
  DK_HOST_DEVICE bool is_pointwise() const {
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
  }
};

}  // namespace dk
