#pragma once
// One SGD step (torch.optim.SGD's rule) over a parameter in one pass, with the same float operations,
// types and order as its numpy array form (python/deepkern/optim/optimizers.py), so the result is
// bit-identical to it; every constant is rounded to T first, as numpy does with a Python float:
//   g = g + wd*w                                   (if wd != 0)
//   buf = g (first step)  else  buf = buf*mom + (1-damp)*g     (if mom != 0)
//   g = g + mom*buf (nesterov)  else  g = buf                   (if mom != 0)
//   w = w - lr*g
#include <cstdint>

namespace dk::cpu {

struct SgdStep {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
  bool first;  // buf is written (= g), not read: the step that creates the momentum buffer
};

// buf may be null only when momentum is 0.
template <typename T>
void sgd_update(T* w, const T* g, T* buf, int64_t n, const SgdStep& s);

}  // namespace dk::cpu
