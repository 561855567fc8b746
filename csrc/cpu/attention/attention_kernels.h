#pragma once
// The per-ISA copies of the attention kernels (attention_impl.h compiled once per ISA, see
// cpu/common/isa.h); attention.cpp picks one at run time.
#include <cstdint>

#include "common/attention_params.h"
#include "cpu/common/isa.h"

DK_ISA_DECLARE(namespace attention {
  template <class T>
  void forward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask, const int64_t* moff, T* out,
               T* lse);
  template <class T>
  void backward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask, const int64_t* moff,
                const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv);
})

#define DK_ATTENTION_INSTANTIATE(T)                                                                                   \
  template void forward<T>(const AttentionParams&, const T*, const T*, const T*, const T*, const int64_t*, T*, T*);   \
  template void backward<T>(const AttentionParams&, const T*, const T*, const T*, const T*, const int64_t*, const T*, \
                            const T*, const T*, T*, T*, T*);
