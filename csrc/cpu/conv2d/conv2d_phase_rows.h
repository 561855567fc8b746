#pragma once
// Per-ISA row copies of the shifted GEMM's phase-split buffers (conv2d_shifted_plan.h): splitting a
// row into its even and odd columns (stride-2 input), the inverse and the sums of the strided dx. Each is one
// plain loop, compiled per ISA so it is vectorised there (stride-2 loads become lane permutes).
#include <cstdint>

#include "cpu/common/isa.h"

DK_ISA_DECLARE(namespace phase_rows {
  // even[i] = src[2i] for i < (n + 1) / 2; odd[i] = src[2i + 1] for i < n / 2 (odd may be null).
  template <typename T>
  void split2(const T* src, int64_t n, T* even, T* odd);
  // dst[2i] = even[i], dst[2i + 1] = odd[i] for 2i (+ 1) < n: the inverse of split2.
  template <typename T>
  void merge2(const T* even, const T* odd, int64_t n, T* dst);
  // dst[i] += src[i] for i < n (the strided dx's col2im in phase space).
  template <typename T>
  void accumulate(const T* src, int64_t n, T* dst);
})

namespace dk::cpu {

// The copies for best_isa(), picked once.
template <typename T>
struct PhaseRows {
  using Split = void (*)(const T*, int64_t, T*, T*);
  using Merge = void (*)(const T*, const T*, int64_t, T*);
  using Accumulate = void (*)(const T*, int64_t, T*);
  Split split2;
  Merge merge2;
  Accumulate accumulate;
  static const PhaseRows& get() {
    static const PhaseRows r{DK_ISA_PICK(Split, phase_rows::split2<T>), DK_ISA_PICK(Merge, phase_rows::merge2<T>),
                             DK_ISA_PICK(Accumulate, phase_rows::accumulate<T>)};
    return r;
  }
};

}  // namespace dk::cpu
