#pragma once
// Host-side helpers shared by the CUDA launchers: stream handles arrive from Python as
// integers (cupy's current stream), and every launch is checked so a CUDA error becomes a
// C++ exception (RuntimeError in Python) naming the kernel, never an abort.
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace dk::cuda {

inline cudaStream_t as_stream(uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

inline void check_launch(const char* kernel) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("deepkern CUDA kernel ") + kernel + " failed: " + cudaGetErrorString(err));
}

// Grid size for a grid-stride loop over n items.
inline unsigned grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  const int64_t cap = 65535LL * 32;
  if (blocks > cap) blocks = cap;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks);
}

#ifndef DEEPKERN_SIMT
// kernel<<<grid, block, smem, stream>>>(args...) plus the error check (the simulator build
// supplies its own launcher with this signature).
template <typename... KArgs, typename... Args>
void launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem_bytes, cudaStream_t stream, Args&&... args) {
  kernel<<<grid, block, smem_bytes, stream>>>(std::forward<Args>(args)...);
  check_launch("deepkern kernel");
}
#endif

}  // namespace dk::cuda
