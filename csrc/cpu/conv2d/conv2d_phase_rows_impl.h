#pragma once
// The loops of conv2d_phase_rows.h, included once per ISA (conv2d_phase_rows{,_avx2,_avx512}.cpp),
// where the compiler vectorises them with that file's flags.
#include "cpu/conv2d/conv2d_phase_rows.h"

namespace dk::cpu::DK_ISA_NAMESPACE::phase_rows {

template <typename T>
void split2(const T* __restrict src, int64_t n, T* __restrict even, T* __restrict odd) {
  const int64_t h = n / 2;
  if (odd) {
    for (int64_t i = 0; i < h; ++i) {
      even[i] = src[2 * i];
      odd[i] = src[2 * i + 1];
    }
  } else {
    for (int64_t i = 0; i < h; ++i) even[i] = src[2 * i];
  }
  if (n & 1) even[h] = src[n - 1];
}

template <typename T>
void merge2(const T* __restrict even, const T* __restrict odd, int64_t n, T* __restrict dst) {
  const int64_t h = n / 2;
  for (int64_t i = 0; i < h; ++i) {
    dst[2 * i] = even[i];
    dst[2 * i + 1] = odd[i];
  }
  if (n & 1) dst[n - 1] = even[h];
}

template <typename T>
void accumulate(const T* __restrict src, int64_t n, T* __restrict dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

#define DK_PHASE_ROWS_INSTANTIATE(T)                        \
  template void split2<T>(const T*, int64_t, T*, T*);       \
  template void merge2<T>(const T*, const T*, int64_t, T*); \
  template void accumulate<T>(const T*, int64_t, T*);
DK_PHASE_ROWS_INSTANTIATE(float)
DK_PHASE_ROWS_INSTANTIATE(double)
#undef DK_PHASE_ROWS_INSTANTIATE

}  // namespace dk::cpu::DK_ISA_NAMESPACE::phase_rows
