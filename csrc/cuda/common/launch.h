#pragma once
// Host-side launch helpers shared by the CUDA launchers. One launch call works under nvcc
// (`<<<>>>` + error check) and under the simulator (its launcher); every launch is checked so a
// CUDA error becomes a C++ exception (RuntimeError in Python) naming the launch, never an abort.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "cuda/common/device.cuh"

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

// The stream argument of launch(): converting to it records the caller's file:line (the default
// arguments are evaluated at the call site), which names the launch in error messages.
struct LaunchSite {
  cudaStream_t stream;
  const char* file;
  const char* function;
  int line;
  LaunchSite(cudaStream_t s, const char* f = __builtin_FILE(), int l = __builtin_LINE(),
             const char* fn = __builtin_FUNCTION())
      : stream(s), file(f), function(fn), line(l) {}
  std::string where() const { return std::string(function) + " at " + file + ":" + std::to_string(line); }
};

inline void check_launch(const LaunchSite& site) { check_launch(site.where().c_str()); }

#if defined(DEEPKERN_SIMT)

template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem_bytes, LaunchSite site, A&&... args) {
  ::simt::launch(false, kernel, grid, block, smem_bytes, site.where(), std::forward<A>(args)...);
}
// For kernels that call grid_sync(): the simulator runs all blocks of the launch together.
template <typename... P, typename... A>
void launch_cooperative(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem_bytes, LaunchSite site, A&&... args) {
  ::simt::launch(true, kernel, grid, block, smem_bytes, site.where(), std::forward<A>(args)...);
}
// Dynamic shared memory over 48 KiB must be allowed per kernel first (as on the GPU).
template <typename... P>
void set_max_dynamic_shared(void (*kernel)(P...), size_t bytes) {
  ::simt::set_max_dynamic_shared(reinterpret_cast<const void*>(kernel), bytes);
}

#else

// kernel<<<grid, block, smem_bytes, stream>>>(args...), then a launch-error check.
template <typename... P, typename... A>
void launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem_bytes, LaunchSite site, A&&... args) {
  // clang-format reads .h as C++ and would split the launch chevrons
  // clang-format off
  kernel<<<grid, block, smem_bytes, site.stream>>>(std::forward<A>(args)...);
  // clang-format on
  check_launch(site);
}

namespace detail {
template <typename... P, typename Tuple, size_t... I>
cudaError_t launch_coop(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, Tuple& t,
                        std::index_sequence<I...>) {
  void* ptrs[sizeof...(P) + 1] = {static_cast<void*>(&std::get<I>(t))...};
  return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kernel), grid, block, ptrs, smem, s);
}
}  // namespace detail

// For kernels that call grid_sync(): all blocks must be resident at once (cudaLaunchCooperativeKernel).
template <typename... P, typename... A>
void launch_cooperative(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem_bytes, LaunchSite site, A&&... args) {
  std::tuple<P...> params(std::forward<A>(args)...);
  cudaError_t err =
      detail::launch_coop(kernel, grid, block, smem_bytes, site.stream, params, std::index_sequence_for<P...>{});
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error("deepkern CUDA kernel " + site.where() + " failed: " + cudaGetErrorString(err));
  }
  check_launch(site);
}

template <typename... P>
void set_max_dynamic_shared(void (*kernel)(P...), size_t bytes) {
  cudaError_t err = cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("deepkern: cudaFuncSetAttribute(MaxDynamicSharedMemorySize, ") +
                             std::to_string(bytes) + ") failed: " + cudaGetErrorString(err));
}

#endif

}  // namespace dk::cuda
