#pragma once
// cp.async wrappers (nvcc-only stand-in until the simulator's version lands).
#include "cuda/common/device.cuh"

namespace dk::cuda {

__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, bool pred = true) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int n = pred ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

}  // namespace dk::cuda
