// Winograd conv2d entry point: picks the kernel copy for the running CPU.
#include "cpu/conv2d/conv2d_winograd.h"

#include "cpu/conv2d/conv2d_winograd_impl.h"

namespace dk::cpu::DK_WG_NS {
DK_INSTANTIATE_WINOGRAD_ISA(float)
DK_INSTANTIATE_WINOGRAD_ISA(double)
}  // namespace dk::cpu::DK_WG_NS

namespace dk::cpu {

template <typename T>
void conv2d_forward_winograd(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  using Fn = void (*)(const Conv2dParams&, const T*, const T*, const T*, T*);
  static const Fn fn = DK_ISA_PICK(Fn, winograd::forward<T>);
  fn(p, x, w, b, y);
}

template void conv2d_forward_winograd<float>(const Conv2dParams&, const float*, const float*, const float*, float*);
template void conv2d_forward_winograd<double>(const Conv2dParams&, const double*, const double*, const double*,
                                              double*);

}  // namespace dk::cpu
