#pragma once
// Scaled dot-product attention, forward and backward (T = float or double). Shapes and the
// mask layout are described in common/attention_params.h. mask / moff are null without a mask.
#include <cstdint>

#include "common/attention_params.h"

namespace dk::cpu {

// out = softmax(q k^T * scale + mask) v per head, with flash-style tiling (no Lq x Lk matrix);
// lse = log-sum-exp of each score row (+inf for a row with nothing to attend to, whose out is 0).
template <typename T>
void attention_forward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask, const int64_t* moff,
                       T* out, T* lse);

// dq, dk, dv (all written) from the forward's out and lse, recomputing the probabilities tile by tile.
template <typename T>
void attention_backward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask,
                        const int64_t* moff, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv);

// Which build runs ("generic", "avx2", "avx512"), for benchmarks and tests.
const char* attention_isa();

}  // namespace dk::cpu
