#pragma once
// The per-ISA copies of the depthwise kernels (conv2d_depthwise_impl.h, cpu/common/isa.h);
// conv2d_depthwise.cpp picks one.
#include "common/conv_params.h"
#include "cpu/common/isa.h"

// The namespace conv2d_depthwise_impl.h defines each copy in.
#define DK_DW_NS DK_ISA_NAMESPACE::depthwise

DK_ISA_DECLARE(namespace depthwise {
  template <typename T>
  void dw_forward(const Conv2dParams&, const T*, const T*, const T*, T*);
  template <typename T>
  bool dw_backward(const Conv2dParams&, const T*, const T*, const T*, T*, T*, T*);
})

#define DK_INSTANTIATE_DEPTHWISE_ISA(T)                                               \
  template void dw_forward<T>(const Conv2dParams&, const T*, const T*, const T*, T*); \
  template bool dw_backward<T>(const Conv2dParams&, const T*, const T*, const T*, T*, T*, T*);
