// Depthwise convolution entry points: pick the kernel copy for the running CPU.
#include "cpu/conv2d/conv2d_depthwise.h"

#define DK_DW_NS dw_generic
#include "cpu/common/cpu_features.h"
#include "cpu/conv2d/conv2d_depthwise_impl.h"
#include "cpu/conv2d/conv2d_depthwise_isa.h"

namespace dk::cpu {

namespace dw_generic {
DK_INSTANTIATE_DEPTHWISE_ISA(float)
DK_INSTANTIATE_DEPTHWISE_ISA(double)
}  // namespace dw_generic

#define DK_DW_DISPATCH(fn, ...)                                      \
  switch (best_isa()) {                                              \
    case Isa::Avx512: return dw_avx512::fn<T>(__VA_ARGS__);          \
    case Isa::Avx2Fma: return dw_avx2::fn<T>(__VA_ARGS__);           \
    default: return dw_generic::fn<T>(__VA_ARGS__);                  \
  }

template <typename T>
void conv2d_depthwise_forward(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  DK_DW_DISPATCH(dw_forward, p, x, w, b, y)
}

template <typename T>
void conv2d_depthwise_backward(const Conv2dParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw) {
  DK_DW_DISPATCH(dw_backward, p, x, w, dy, dx, dw)
}

#undef DK_DW_DISPATCH

template void conv2d_depthwise_forward<float>(const Conv2dParams&, const float*, const float*, const float*, float*);
template void conv2d_depthwise_forward<double>(const Conv2dParams&, const double*, const double*, const double*,
                                               double*);
template void conv2d_depthwise_backward<float>(const Conv2dParams&, const float*, const float*, const float*, float*,
                                               float*);
template void conv2d_depthwise_backward<double>(const Conv2dParams&, const double*, const double*, const double*,
                                                double*, double*);

}  // namespace dk::cpu
