#pragma once
// The SIMT host simulator: CUDA kernel source compiled by g++ (-DDEEPKERN_SIMT=1) runs on the CPU.
// Each block's threads are fibers on one OS thread that switch only at synchronisation points
// (barriers, warp collectives, mma/ldmatrix); blocks of a launch run on several OS threads (OpenMP).
// Bugs are reported as simt::Error (a std::runtime_error): docs/CUDA.md explains the whole design.
//
// This header defines the CUDA qualifiers first (crt/host_defines.h only defines the ones still
// undefined), then pulls in the CUDA headers that compile under g++ (types, fp16, bf16).
#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __constant__
// Static shared memory: thread-local (so blocks on different OS threads get their own copy, and the
// fibers of one block, which share an OS thread, share it) and gathered in one ELF section that the
// simulator fills with 0xFF at every block start (see smem_begin.cpp).
#if defined(__SANITIZE_ADDRESS__)
// ASan build: each variable is preceded (in declaration; followed in memory, as GCC lays a
// function's statics out in reverse) by a 32-byte red zone that the scheduler finds by its
// pattern and poisons, so an out-of-bounds index into a static shared array is an ASan report.
#define SIMT_CAT2(a, b) a##b
#define SIMT_CAT(a, b) SIMT_CAT2(a, b)
#define SIMT_REDZONE_PATTERN "simt: static shared red zone ->"
#define __shared__                                                                     \
  static thread_local unsigned char SIMT_CAT(simt_redzone_, __COUNTER__)[32]           \
      __attribute__((section("simt_smem"), aligned(16), used)) = SIMT_REDZONE_PATTERN; \
  static thread_local __attribute__((section("simt_smem"), aligned(16)))
#else
#define __shared__ static thread_local __attribute__((section("simt_smem"), aligned(16)))
#endif

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <driver_types.h>
#include <vector_functions.h>
#include <vector_types.h>

namespace simt {

// What a running fiber sees as its CUDA built-in variables.
struct Ctx {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
  unsigned char* dynamic_smem;
};
inline thread_local Ctx* tls_ctx = nullptr;  // set by the scheduler before it resumes a fiber

inline unsigned char* dynamic_shared() { return tls_ctx->dynamic_smem; }

// ---- launch (scheduler.cpp) ----
using Body = void (*)(void* launch_args);
void launch_erased(bool cooperative, const void* kernel, dim3 grid, dim3 block, size_t smem, const std::string& where,
                   Body body, void* args);
void set_max_dynamic_shared(const void* kernel, size_t bytes);

// Stream capture (graphs.cpp): while this OS thread captures, launches are recorded, not run.
bool capturing();
void record_launch(std::function<void()> launch);

// Each simulated thread calls the kernel with its own copy of the by-value parameters, as on a GPU.
template <typename... P, typename... A>
void launch(bool cooperative, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, const std::string& where,
            A&&... args) {
  if (capturing()) {  // a graph node: the kernel and copies of its arguments, launched at replay
    auto params = std::make_shared<std::tuple<std::decay_t<P>...>>(std::forward<A>(args)...);
    record_launch(
        [=] { std::apply([&](auto&... v) { launch(cooperative, kernel, grid, block, smem, where, v...); }, *params); });
    return;
  }
  struct Args {
    void (*kernel)(P...);
    std::tuple<std::decay_t<P>...> params;
  } a{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
  Body body = [](void* p) {
    auto* x = static_cast<Args*>(p);
    std::apply(x->kernel, x->params);  // by-value parameters: each thread gets copies
  };
  launch_erased(cooperative, reinterpret_cast<const void*>(kernel), grid, block, smem, where, body, &a);
}

// ---- synchronisation points (scheduler.cpp); file/line name the call in error reports ----
int block_barrier(int kind, int pred, const char* file, int line);  // kind: 0 sync, 1 count, 2 and, 3 or
void grid_sync(const char* file, int line);

// A warp collective: every lane named in mask posts one; when all have, `resolve` computes results.
struct WarpOp;
using Resolve = void (*)(WarpOp* lanes[32], unsigned mask);
struct WarpOp {
  Resolve resolve;  // also the op's identity: lanes of one collective must post the same
  unsigned mask;
  int arg, width;
  uint64_t value, result;
  const void* in;  // op-specific inputs / outputs (on the posting fiber's stack)
  void* out;
};
void warp_collective(WarpOp& op, const char* what, const char* file, int line);
unsigned active_mask();
[[noreturn]] void fail(const std::string& what, const char* file, int line);  // reports a bug, ends the launch

// ---- tensor cores and async copies (tensor.cpp), used by cuda/common/mma.cuh and cp_async.cuh ----
enum class MmaType { F16, BF16 };
void mma_m16n8k16(MmaType t, float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], const char* file,
                  int line);
void mma_m16n8k8_tf32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], const char* file,
                      int line);
uint32_t to_tf32(float x);
void ldmatrix(uint32_t* r, int num, bool trans, const void* row, const char* file, int line);
void cp_async(void* smem, const void* gmem, int bytes, bool pred, const char* file = __builtin_FILE(),
              int line = __builtin_LINE());
void cp_async_commit();
void cp_async_wait(int n, const char* file = __builtin_FILE(), int line = __builtin_LINE());

}  // namespace simt

#define threadIdx (::simt::tls_ctx->thread_idx)
#define blockIdx (::simt::tls_ctx->block_idx)
#define blockDim (::simt::tls_ctx->block_dim)
#define gridDim (::simt::tls_ctx->grid_dim)
#ifndef warpSize  // cuda_bf16.h defines it as 32 already
#define warpSize 32
#endif

#include "simt/intrinsics.h"
