#pragma once
// One Adam (or AdamW, after its decay) step over a parameter in one pass, with the same float
// operations, types and order as its numpy array form (python/deepkern/optim/optimizers.py), so the
// result is bit-identical to it:
//   m = m*b1 + g*(1-b1);  v = v*b2 + (g*(1-b2))*g            (in T)
//   vmax = max(vmax, v) and v = vmax, if amsgrad                (in T, NaN propagates)
//   w = T(double(w) - (lr/bc1) * (double(m) / (double(sqrt(v)) / sqrt(bc2) + eps)))
#include <cstdint>

namespace dk::cpu {

struct AdamStep {
  double b1, b2;    // betas
  double lr_bc1;    // lr / (1 - b1^t)
  double sqrt_bc2;  // sqrt(1 - b2^t)
  double eps;
};

template <typename T>
void adam_update(T* w, const T* g, T* m, T* v, T* vmax, int64_t n, const AdamStep& s);

}  // namespace dk::cpu
