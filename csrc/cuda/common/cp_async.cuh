#pragma once
// Asynchronous global -> shared copies (sm_80+ cp.async): inline PTX under nvcc; under the
// simulator a group's copies land only at the cp_async_wait<N>() that completes the group, so a
// read of the destination before the wait sees the 0xFF poison. pred false: the destination gets
// zero bytes and the source is not read (an out-of-range tile edge).
#include "cuda/common/device.cuh"

namespace dk::cuda {

#if defined(DEEPKERN_SIMT)

#define DK_SITE const char *file = __builtin_FILE(), int line = __builtin_LINE()
inline void cp_async_16(void* smem, const void* gmem, bool pred = true, DK_SITE) {
  ::simt::cp_async(smem, gmem, 16, pred, file, line);
}
inline void cp_async_8(void* smem, const void* gmem, bool pred = true, DK_SITE) {
  ::simt::cp_async(smem, gmem, 8, pred, file, line);
}
inline void cp_async_4(void* smem, const void* gmem, bool pred = true, DK_SITE) {
  ::simt::cp_async(smem, gmem, 4, pred, file, line);
}
#undef DK_SITE
inline void cp_async_commit() { ::simt::cp_async_commit(); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
inline void cp_async_wait() {
  ::simt::cp_async_wait(N);
}

#else

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define DK_CP_ASYNC(NAME, BYTES, CACHE)                                                                  \
  __device__ __forceinline__ void NAME(void* smem, const void* gmem, bool pred = true) {                 \
    const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(smem));                          \
    asm volatile("cp.async." CACHE ".shared.global [%0], [%1], " #BYTES ", %2;\n" ::"r"(dst), "l"(gmem), \
                 "r"(pred ? BYTES : 0)                                                                   \
                 : "memory");                                                                            \
  }
#else
#define DK_CP_ASYNC(NAME, BYTES, CACHE) \
  __device__ __forceinline__ void NAME(void* smem, const void* gmem, bool pred = true) {}
#endif
DK_CP_ASYNC(cp_async_16, 16, "cg")
DK_CP_ASYNC(cp_async_8, 8, "ca")
DK_CP_ASYNC(cp_async_4, 4, "ca")
#undef DK_CP_ASYNC

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

#endif

}  // namespace dk::cuda
