#pragma once
// Shapes and parameters of a scaled dot-product attention call. Validated in Python;
// kernels trust them. Leading batch/head dims are flattened into BH.
//   q (BH, Lq, D), k (BH, Lk, D), v (BH, Lk, Dv), out (BH, Lq, Dv), lse (BH, Lq)
// Optional additive mask (bool masks arrive as 0 / -inf): element (b, i, j) lives at
//   mask[mask_off[b] + i * m_rs + j * m_cs], strides 0 along broadcast dims, so a mask
//   broadcast over batch, heads or rows is never materialised at full size.
#include <cstdint>

#include "common/host_device.h"

namespace dk {

struct AttentionParams {
  int64_t BH, Lq, Lk, D, Dv;
  int64_t causal;      // 1: query i attends keys j <= i (PyTorch's top-left alignment)
  int64_t has_mask;    // 1: mask / mask_off are given
  int64_t m_rs, m_cs;  // mask element strides along Lq and Lk (0 where broadcast)
  double scale;        // multiplies q.k (default 1/sqrt(D), set in Python)
};

}  // namespace dk
