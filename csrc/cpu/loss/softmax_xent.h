#pragma once
// Softmax cross-entropy against integer labels, forward and gradient in one pass over the logits
// (nn.SoftmaxCrossEntropy's numpy path). Row r of z (n x C) with label y_r:
//   probs_r = softmax(z_r),  grad_r = (probs_r - onehot(y_r)) / n_total,
//   returns sum over rows of  log(sum_j e^(z_rj - m_r)) - (z_r,y_r - m_r),  m_r = max_j z_rj
// (the caller divides by n_total). A NaN in a row makes that row's probs, grad and loss NaN, as
// the array form does; labels are checked by the caller (0 <= y < C).
#include <cstdint>

#include "cpu/common/isa.h"

namespace dk::cpu {

template <typename T>
double softmax_xent(const T* z, const int64_t* labels, int64_t n, int64_t C, int64_t n_total, T* probs, T* grad);

// One block of rows [r0, r1), on one thread: the per-ISA kernels (softmax_xent_impl.h).
template <typename T>
using SoftmaxXentRows = double (*)(const T* z, const int64_t* labels, int64_t r0, int64_t r1, int64_t C, T n_total,
                                   T* probs, T* grad);

}  // namespace dk::cpu

DK_ISA_DECLARE(namespace loss {
  double softmax_xent_rows_f32(const float* z, const int64_t* labels, int64_t r0, int64_t r1, int64_t C, float n_total,
                               float* probs, float* grad);
})
