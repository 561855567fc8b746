// Depthwise convolution entry points: pick the kernel copy for the running CPU.
#include "cpu/conv2d/conv2d_depthwise.h"

#include "cpu/conv2d/conv2d_depthwise_impl.h"
#include "cpu/conv2d/conv2d_depthwise_isa.h"

namespace dk::cpu::DK_DW_NS {
DK_INSTANTIATE_DEPTHWISE_ISA(float)
DK_INSTANTIATE_DEPTHWISE_ISA(double)
}  // namespace dk::cpu::DK_DW_NS

namespace dk::cpu {

template <typename T>
void conv2d_depthwise_forward(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  using Fn = void (*)(const Conv2dParams&, const T*, const T*, const T*, T*);
  static const Fn fn = DK_ISA_PICK(Fn, depthwise::dw_forward<T>);
  fn(p, x, w, b, y);
}

template <typename T>
bool conv2d_depthwise_backward(const Conv2dParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  using Fn = bool (*)(const Conv2dParams&, const T*, const T*, const T*, T*, T*, T*);
  static const Fn fn = DK_ISA_PICK(Fn, depthwise::dw_backward<T>);
  return fn(p, x, w, dy, dx, dw, db);
}

template void conv2d_depthwise_forward<float>(const Conv2dParams&, const float*, const float*, const float*, float*);
template void conv2d_depthwise_forward<double>(const Conv2dParams&, const double*, const double*, const double*,
                                               double*);
template bool conv2d_depthwise_backward<float>(const Conv2dParams&, const float*, const float*, const float*, float*,
                                               float*, float*);
template bool conv2d_depthwise_backward<double>(const Conv2dParams&, const double*, const double*, const double*,
                                                double*, double*, double*);

}  // namespace dk::cpu
