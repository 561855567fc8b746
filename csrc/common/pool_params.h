#pragma once
// Shapes and parameters of a 2-D pooling call over an NCHW tensor. Validated in Python;
// kernels trust them. All sizes are 64-bit so index arithmetic never overflows.
#include <cstdint>

#include "common/host_device.h"

namespace dk {

struct Pool2dParams {
  int64_t N, C, H, W;      // input
  int64_t Ho, Wo;          // output
  int64_t kh, kw;          // window
  int64_t sh, sw;          // stride
  int64_t ph, pw;          // padding (max pool pads with -inf, avg pool counts zeros)
  int64_t dh = 1, dw = 1;  // dilation (max pool only)
  // Avg pool: each window's divisor. divisor > 0 is PyTorch's divisor_override; otherwise the window's
  // size clipped to the padded input (count_pad, PyTorch's count_include_pad) or to the input itself.
  // (ceil_mode only changes Ho, Wo: windows that run past the padded input are clipped.)
  int64_t divisor = 0;
  bool count_pad = true;

  DK_HOST_DEVICE int64_t planes() const { return N * C; }
  DK_HOST_DEVICE int64_t in_plane() const { return H * W; }
  DK_HOST_DEVICE int64_t out_plane() const { return Ho * Wo; }
};

}  // namespace dk
