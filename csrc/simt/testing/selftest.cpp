// Kernels that test the simulator itself, compiled into deepkern._cuda_sim only: correct ones
// (barriers, shuffles, votes, atomics, grid_sync) and deliberately broken ones that it must catch.
// tests/test_simt_core.py runs them as _simt_selftest(name, grid, block, smem, in_ptr, out_ptr, n).
#include <pybind11/pybind11.h>

#include <chrono>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>

#include "bindings/registry.h"
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "simt/fiber.h"

namespace dk::simt_test {
namespace {

using Kernel = void (*)(const float*, float*, int);

// out[i] = in[i - 1] through shared memory (thread 0: in[blockDim-1]), with the barrier.
__global__ void shift_ok(const float* in, float* out, int n) {
  __shared__ float s[1024];
  const int t = threadIdx.x;
  s[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = s[(t + blockDim.x - 1) % blockDim.x];
}
// BROKEN: the same without __syncthreads: thread t reads what thread t-1 has not written yet in
// reversed order (ascending order happens to work, as it often does on a GPU).
__global__ void shift_missing_sync(const float* in, float* out, int n) {
  __shared__ float s[1024];
  const int t = threadIdx.x;
  s[t] = in[blockIdx.x * blockDim.x + t];
  out[blockIdx.x * blockDim.x + t] = t == 0 ? in[blockIdx.x * blockDim.x] : s[t - 1];
}
// BROKEN: only the first half of the block reaches the first barrier, so the halves meet at
// different ones. (Threads that have exited do not count, as on the GPU: an early `return` before
// a barrier is not an error.)
__global__ void divergent_barrier(const float* in, float* out, int n) {
  if (threadIdx.x < blockDim.x / 2) __syncthreads();
  out[threadIdx.x] = in[threadIdx.x];
  __syncthreads();
}
// BROKEN: two different barriers, one per half.
__global__ void mismatched_barriers(const float* in, float* out, int n) {
  if (threadIdx.x % 2) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = in[threadIdx.x];
}
// BROKEN: lanes 16-31 call a shuffle whose mask names only lanes 0-15.
__global__ void shfl_mask_misses_caller(const float* in, float* out, int n) {
  out[threadIdx.x] = __shfl_sync(0x0000ffffu, in[threadIdx.x], 0);
}
// BROKEN: a full-mask shuffle that only half of the warp executes.
__global__ void shfl_half_warp(const float* in, float* out, int n) {
  float v = in[threadIdx.x];
  if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}
// BROKEN: one thread writes one float past the end of dynamic shared memory (n floats).
__global__ void dynamic_smem_overflow(const float* in, float* out, int n) {
  DK_DYNAMIC_SHARED(float, s);
  s[threadIdx.x + 1] = in[threadIdx.x];
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];
}
// BROKEN: reads one element past a static shared array (sees the poison or a neighbour).
__global__ void static_smem_read_past(const float* in, float* out, int n) {
  __shared__ float s[32];
  s[threadIdx.x] = in[threadIdx.x];
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x + 1];
}
// BROKEN: the same through a pointer (no array bounds for UBSan to check: ASan's red zone must).
__global__ void static_smem_ptr_past(const float* in, float* out, int n) {
  __shared__ float s[32];
  float* p = s;
  p[threadIdx.x] = in[threadIdx.x];
  __syncthreads();
  out[threadIdx.x] = p[threadIdx.x + 1];
}
// Reads shared memory nobody wrote: the 0xFF refill makes it NaN in every block.
__global__ void read_unwritten(const float* in, float* out, int n) {
  DK_DYNAMIC_SHARED(float, s);
  out[blockIdx.x * blockDim.x + threadIdx.x] = s[threadIdx.x];
}
// Per warp: sum by __shfl_down_sync, max by __shfl_xor_sync, prefix by __shfl_up_sync, the
// ballot of v > 0, a width-8 broadcast, __reduce_add_sync of (int)v, and the barrier votes.
__global__ void warp_ops(const float* in, float* out, int n) {
  const int t = threadIdx.x, lane = t % 32;
  const float v = in[t];
  float sum = v, mx = v, pre = v;
  for (int o = 16; o > 0; o /= 2) sum += __shfl_down_sync(0xffffffffu, sum, o);
  for (int o = 16; o > 0; o /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  for (int o = 1; o < 32; o *= 2) {
    const float u = __shfl_up_sync(0xffffffffu, pre, o);
    if (lane >= o) pre += u;
  }
  const unsigned ballot = __ballot_sync(0xffffffffu, v > 0.0f);
  const float seg = __shfl_sync(0xffffffffu, v, 3, 8);
  const int red = __reduce_add_sync(0xffffffffu, (int)v);
  const int any = __any_sync(0xffffffffu, v > 2.0f), all = __all_sync(0xffffffffu, v > -100.0f);
  const int cnt = __syncthreads_count(v > 0.0f), band = __syncthreads_and(v > -100.0f),
            bor = __syncthreads_or(v > 100.0f);
  float* o = out + t * 10;
  o[0] = sum, o[1] = mx, o[2] = pre, o[3] = (float)(ballot & 0xffff), o[4] = (float)(ballot >> 16), o[5] = seg;
  o[6] = (float)red, o[7] = (float)(any + 2 * all), o[8] = (float)cnt, o[9] = (float)(band + 2 * bor);
}
// Every thread of every block adds in[t] to out[0] (real atomics: blocks run on several threads).
__global__ void atomic_sum(const float* in, float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) atomicAdd(out, in[i]);
}
// Each block writes its value, all blocks meet at grid_sync, each reads its neighbour's.
__global__ void grid_neighbour(const float* in, float* out, int n) {
  __shared__ float mine;
  if (threadIdx.x == 0) mine = in[blockIdx.x];
  __syncthreads();
  if (threadIdx.x == 0) out[blockIdx.x] = mine * 2.0f;
  dk::cuda::grid_sync();
  if (threadIdx.x == 0) out[gridDim.x + blockIdx.x] = out[(blockIdx.x + 1) % gridDim.x] + mine;
}
// BROKEN: block 0 leaves before the grid barrier.
__global__ void grid_early_exit(const float* in, float* out, int n) {
  if (blockIdx.x == 0) return;
  dk::cuda::grid_sync();
  out[blockIdx.x] = in[blockIdx.x];
}

// For benchmarks/simt_switch.py: n barriers / n shuffles per thread, nothing else.
__global__ void barrier_loop(const float* in, float* out, int n) {
  for (int i = 0; i < n; ++i) __syncthreads();
}
__global__ void shfl_loop(const float* in, float* out, int n) {
  float v = threadIdx.x;
  for (int i = 0; i < n; ++i) v = __shfl_xor_sync(0xffffffffu, v, 1);
  if (v < 0.0f) out[0] = v;
}

struct Entry {
  Kernel k;
  bool cooperative;
};
const std::map<std::string, Entry>& kernels() {
  static const std::map<std::string, Entry> m = {
      {"shift_ok", {shift_ok, false}},
      {"shift_missing_sync", {shift_missing_sync, false}},
      {"divergent_barrier", {divergent_barrier, false}},
      {"mismatched_barriers", {mismatched_barriers, false}},
      {"shfl_mask_misses_caller", {shfl_mask_misses_caller, false}},
      {"shfl_half_warp", {shfl_half_warp, false}},
      {"dynamic_smem_overflow", {dynamic_smem_overflow, false}},
      {"static_smem_read_past", {static_smem_read_past, false}},
      {"static_smem_ptr_past", {static_smem_ptr_past, false}},
      {"read_unwritten", {read_unwritten, false}},
      {"warp_ops", {warp_ops, false}},
      {"atomic_sum", {atomic_sum, false}},
      {"grid_neighbour", {grid_neighbour, true}},
      {"grid_neighbour_not_cooperative", {grid_neighbour, false}},
      {"grid_early_exit", {grid_early_exit, true}},
      {"barrier_loop", {barrier_loop, false}},
      {"shfl_loop", {shfl_loop, false}},
  };
  return m;
}

void run(const std::string& name, unsigned grid, unsigned block, size_t smem, uintptr_t in, uintptr_t out, int n) {
  auto it = kernels().find(name);
  if (it == kernels().end()) throw std::invalid_argument("no selftest kernel " + name);
  auto* x = reinterpret_cast<const float*>(in);
  auto* y = reinterpret_cast<float*>(out);
  if (it->second.cooperative)
    cuda::launch_cooperative(it->second.k, grid, block, smem, nullptr, x, y, n);
  else
    cuda::launch(it->second.k, grid, block, smem, nullptr, x, y, n);
}

// The bare fiber switch: one fiber and the caller switch back and forth n times; ns per switch.
double switch_ns(int n) {
  static simt::Fiber main_ctx, fib;
  static int left;
  left = n;
  simt::fiber_init(
      fib, 64 * 1024,
      [](void*) {
        simt::fiber_started();
        while (--left > 0) simt::switch_to(fib, main_ctx);
        simt::switch_to(fib, main_ctx, true);
      },
      nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) simt::switch_to(main_ctx, fib);
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / (2.0 * n);
}

void register_selftest(pybind11::module_& m) {
  m.def("_simt_switch_ns", &switch_ns);
  m.def("_simt_selftest",
        [](const std::string& name, unsigned grid, unsigned block, size_t smem, uintptr_t in, uintptr_t out, int n) {
          pybind11::gil_scoped_release nogil;
          run(name, grid, block, smem, in, out, n);
        });
}

DK_REGISTER_BINDINGS(register_selftest);

}  // namespace
}  // namespace dk::simt_test
