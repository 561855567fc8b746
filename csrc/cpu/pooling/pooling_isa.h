#pragma once
// The per-ISA copies of the pooling kernels (see pooling_impl.h and cpu/common/isa.h); pooling.cpp
// picks one at run time.
#include <cstdint>

#include "common/pool_params.h"
#include "cpu/common/isa.h"

// The namespace pooling_impl.h defines each copy in.
#define DK_POOL_NS DK_ISA_NAMESPACE::pooling

DK_ISA_DECLARE(namespace pooling {
  template <typename T>
  void max_forward(const Pool2dParams&, const T*, T*, int64_t*);
  template <typename T>
  void max_backward(const Pool2dParams&, const T*, const int64_t*, T*);
  template <typename T>
  void avg_forward(const Pool2dParams&, const T*, T*);
  template <typename T>
  void avg_backward(const Pool2dParams&, const T*, T*);
})

#define DK_INSTANTIATE_POOLING_ISA(T)                                               \
  template void max_forward<T>(const Pool2dParams&, const T*, T*, int64_t*);        \
  template void max_backward<T>(const Pool2dParams&, const T*, const int64_t*, T*); \
  template void avg_forward<T>(const Pool2dParams&, const T*, T*);                  \
  template void avg_backward<T>(const Pool2dParams&, const T*, T*);
