#pragma once
// Max pooling on the GPU. Forward: one thread per output element (value and argmax). Backward:
// one thread per *input* element gathering from the outputs whose windows cover it, so
// overlapping windows need no atomics and the result is bitwise deterministic.
#include "cuda/pooling/pool_common.cuh"
#include "cuda/pooling/pool_tiled.cuh"
#include "cuda/pooling/pooling.h"

namespace dk::cuda {
namespace pool {

template <typename T>
__global__ void max_fwd_kernel(Pool2dParams p, const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ idx) {
  using A = typename Acc<T>::type;
  const int64_t total = p.planes() * p.out_plane();
  for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < total; o += (int64_t)gridDim.x * blockDim.x) {
    const Window win = clipped_window(p, o);
    const T* xp = x + win.plane * p.in_plane();
    A best = -INFINITY;
    int64_t best_at = win.hb * p.W + win.wb;
    for (int64_t ih = win.hb; ih < win.he; ++ih)
      for (int64_t iw = win.wb; iw < win.we; ++iw) {
        const A v = to_acc(xp[ih * p.W + iw]);
        if (v > best || isnan(v)) {  // as PyTorch: a NaN replaces the max, the last NaN wins
          best = v;
          best_at = ih * p.W + iw;
        }
      }
    y[o] = from_acc<T>(best);
    idx[o] = best_at;
  }
}

template <typename T>
__global__ void max_bwd_kernel(Pool2dParams p, const T* __restrict__ dy, const int64_t* __restrict__ idx,
                               T* __restrict__ dx) {
  using A = typename Acc<T>::type;
  const int64_t total = p.planes() * p.in_plane();
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t iw = i % p.W, ih = (i / p.W) % p.H, plane = i / p.in_plane();
    const int64_t me = ih * p.W + iw;
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, p.sh, p.ph, p.kh, p.Ho, oh0, oh1);
    covering(iw, p.sw, p.pw, p.kw, p.Wo, ow0, ow1);
    const int64_t base = plane * p.out_plane();
    A g = 0;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t o = base + oh * p.Wo + ow;
        if (idx[o] == me) g += to_acc(dy[o]);
      }
    dx[i] = from_acc<T>(g);
  }
}

// Typed launchers. float64: instantiated only in pooling_f64.cu (DK_CUDA_F64_TU), the one
// translation unit where ptxas allows double precision (docs/CUDA_STATIC.md).
template <typename T>
void max_fwd(const Pool2dParams& p, const void* x, void* y, int64_t* idx, unsigned grid, cudaStream_t s) {
  if (tiled<T, true, true>(p, x, y, nullptr, idx, s)) return;  // windows tile the input: 16-byte kernels
  launch(max_fwd_kernel<T>, grid, kThreads, 0, s, p, static_cast<const T*>(x), static_cast<T*>(y), idx);
}

template <typename T>
void max_bwd(const Pool2dParams& p, const void* dy, const int64_t* idx, void* dx, unsigned grid, cudaStream_t s) {
  if (tiled<T, true, false>(p, dy, dx, idx, nullptr, s)) return;
  launch(max_bwd_kernel<T>, grid, kThreads, 0, s, p, static_cast<const T*>(dy), idx, static_cast<T*>(dx));
}

#ifdef DK_CUDA_F64_TU
template void max_fwd<double>(const Pool2dParams&, const void*, void*, int64_t*, unsigned, cudaStream_t);
template void max_bwd<double>(const Pool2dParams&, const void*, const int64_t*, void*, unsigned, cudaStream_t);
#else
extern template void max_fwd<double>(const Pool2dParams&, const void*, void*, int64_t*, unsigned, cudaStream_t);
extern template void max_bwd<double>(const Pool2dParams&, const void*, const int64_t*, void*, unsigned, cudaStream_t);
#endif

}  // namespace pool

#ifndef DK_CUDA_F64_TU  // the entry points: pooling.cu only
void max_pool2d_forward(const Pool2dParams& p, DType dt, const void* x, void* y, int64_t* idx, uintptr_t stream) {
  pool::for_dtype(
      dt, "max_pool2d_forward", p.planes() * p.out_plane(), stream,
      [&](auto* tag, unsigned grid, cudaStream_t s) { pool::max_fwd<DK_ELEM(tag)>(p, x, y, idx, grid, s); });
}

void max_pool2d_backward(const Pool2dParams& p, DType dt, const void* dy, const int64_t* idx, void* dx,
                         uintptr_t stream) {
  pool::for_dtype(
      dt, "max_pool2d_backward", p.planes() * p.in_plane(), stream,
      [&](auto* tag, unsigned grid, cudaStream_t s) { pool::max_bwd<DK_ELEM(tag)>(p, dy, idx, dx, grid, s); });
}
#endif

}  // namespace dk::cuda
