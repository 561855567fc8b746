#pragma once
// Shapes of an LSTM call over a (T, B, I) sequence with hidden size H (a cell is T = 1).
// Gate order i, f, g, o as PyTorch: the gate pre-activations of one row are 4H wide.
// Validated in Python; kernels trust them. 64-bit sizes.
#include <cstdint>

#include "common/host_device.h"

namespace dk {

struct LstmParams {
  int64_t T, B, I, H;

  DK_HOST_DEVICE int64_t G() const { return 4 * H; }     // width of a gates row
  DK_HOST_DEVICE int64_t rows() const { return T * B; }  // rows of the all-steps GEMMs
};

}  // namespace dk
