// Pooling entry points: pick the kernel copy for the running CPU (see pooling_impl.h).
#include "cpu/pooling/pooling.h"

#include "cpu/pooling/pooling_impl.h"
#include "cpu/pooling/pooling_isa.h"

namespace dk::cpu::DK_POOL_NS {
DK_INSTANTIATE_POOLING_ISA(float)
DK_INSTANTIATE_POOLING_ISA(double)
}  // namespace dk::cpu::DK_POOL_NS

namespace dk::cpu {

// Calls the copy of pooling::fn<T> for best_isa(), picked once per T.
#define DK_POOL_DISPATCH(fn, ...)                                                               \
  static const auto pick = DK_ISA_PICK(decltype(&isa_generic::pooling::fn<T>), pooling::fn<T>); \
  return pick(__VA_ARGS__);

template <typename T>
void max_pool2d_forward(const Pool2dParams& p, const T* x, T* y, int64_t* idx) {
  DK_POOL_DISPATCH(max_forward, p, x, y, idx)
}

template <typename T>
void max_pool2d_backward(const Pool2dParams& p, const T* dy, const int64_t* idx, T* dx) {
  DK_POOL_DISPATCH(max_backward, p, dy, idx, dx)
}

template <typename T>
void avg_pool2d_forward(const Pool2dParams& p, const T* x, T* y) {
  DK_POOL_DISPATCH(avg_forward, p, x, y)
}

template <typename T>
void avg_pool2d_backward(const Pool2dParams& p, const T* dy, T* dx){DK_POOL_DISPATCH(avg_backward, p, dy, dx)}

#undef DK_POOL_DISPATCH

#define DK_INSTANTIATE_POOLING(T)                                                          \
  template void max_pool2d_forward<T>(const Pool2dParams&, const T*, T*, int64_t*);        \
  template void max_pool2d_backward<T>(const Pool2dParams&, const T*, const int64_t*, T*); \
  template void avg_pool2d_forward<T>(const Pool2dParams&, const T*, T*);                  \
  template void avg_pool2d_backward<T>(const Pool2dParams&, const T*, T*);
DK_INSTANTIATE_POOLING(float) DK_INSTANTIATE_POOLING(double)
#undef DK_INSTANTIATE_POOLING

}  // namespace dk::cpu
