#pragma once
// The per-ISA copies of the depthwise kernels (conv2d_depthwise_impl.h); conv2d_depthwise.cpp picks one.
#include "common/conv_params.h"

#define DK_DECLARE_DEPTHWISE_ISA(NS)                                                                      \
  namespace dk::cpu::NS {                                                                                 \
  template <typename T> void dw_forward(const Conv2dParams&, const T*, const T*, const T*, T*);          \
  template <typename T> void dw_backward(const Conv2dParams&, const T*, const T*, const T*, T*, T*);     \
  }

DK_DECLARE_DEPTHWISE_ISA(dw_generic)
DK_DECLARE_DEPTHWISE_ISA(dw_avx2)
DK_DECLARE_DEPTHWISE_ISA(dw_avx512)
#undef DK_DECLARE_DEPTHWISE_ISA

#define DK_INSTANTIATE_DEPTHWISE_ISA(T)                                                                   \
  template void dw_forward<T>(const Conv2dParams&, const T*, const T*, const T*, T*);                    \
  template void dw_backward<T>(const Conv2dParams&, const T*, const T*, const T*, T*, T*);
