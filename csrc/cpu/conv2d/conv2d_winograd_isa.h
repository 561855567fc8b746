#pragma once
// The per-ISA copies of the Winograd kernels (conv2d_winograd_impl.h, _dw_impl.h, cpu/common/isa.h);
// conv2d_winograd.cpp picks one.
#include "common/conv_params.h"
#include "cpu/common/isa.h"

#define DK_WG_NS DK_ISA_NAMESPACE::winograd

DK_ISA_DECLARE(namespace winograd {
  template <typename T>
  void forward(const Conv2dParams&, const T*, const T*, const T*, T*);
  template <typename T>
  void weight_grad(const Conv2dParams&, const T*, const T*, T*);
})

#define DK_INSTANTIATE_WINOGRAD_ISA(T)                                             \
  template void forward<T>(const Conv2dParams&, const T*, const T*, const T*, T*); \
  template void weight_grad<T>(const Conv2dParams&, const T*, const T*, T*);
