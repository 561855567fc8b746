#pragma once
// The one include of every CUDA kernel file. Under nvcc: the CUDA runtime and fp16/bf16 headers.
// Compiled by g++ with -DDEEPKERN_SIMT=1 (deepkern._cuda_sim): the SIMT host simulator in
// csrc/simt, which supplies threadIdx, __syncthreads, shuffles, atomics and the host runtime subset.
#include <cstddef>
#include <cstdint>

#if defined(DEEPKERN_SIMT)
#include "simt/simt.h"
// The block's dynamic shared memory, exactly the launch's smem_bytes long (0xFF-filled per block).
#define DK_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::simt::dynamic_shared())
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
// `extern __shared__` cannot be written for g++, so kernels declare dynamic shared memory with this.
#define DK_DYNAMIC_SHARED(T, name)                                  \
  extern __shared__ __align__(16) unsigned char dk_dynamic_smem_[]; \
  T* name = reinterpret_cast<T*>(dk_dynamic_smem_)
#endif

namespace dk::cuda {
#if defined(DEEPKERN_SIMT)
// Grid-wide barrier; only in kernels started with launch_cooperative().
inline void grid_sync(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ::simt::grid_sync(file, line);
}
#else
}  // namespace dk::cuda
#include <cooperative_groups.h>
namespace dk::cuda {
// Grid-wide barrier; only in kernels started with launch_cooperative().
__device__ __forceinline__ void grid_sync() { cooperative_groups::this_grid().sync(); }
#endif
}  // namespace dk::cuda
