#pragma once
// Per-thread scratch buffers for the convolution kernels, grown on demand and kept for the
// thread's lifetime (training calls the same shapes again and again).
#include <cstddef>
#include <vector>

namespace dk::cpu {

enum ConvScratchSlot { kColSlot = 0, kDcolSlot = 1, kPadSlot = 2, kOutSlot = 3, kGatherSlot = 4, kNumConvSlots = 5 };

template <typename T>
T* conv_thread_buffer(int slot, size_t n) {
  static thread_local std::vector<T> bufs[kNumConvSlots];
  if (bufs[slot].size() < n) bufs[slot].resize(n);
  return bufs[slot].data();
}

}  // namespace dk::cpu
