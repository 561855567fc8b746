#pragma once
// Average pooling on the GPU (zero padding counted in the window area, as PyTorch's default).
// Forward: one thread per output element; backward: one thread per input element gathering
// from the covering outputs (no atomics, deterministic).
#include "cuda/pooling/pool_common.cuh"
#include "cuda/pooling/pool_tiled.cuh"
#include "cuda/pooling/pooling.h"

namespace dk::cuda {
namespace pool {

template <typename T>
__global__ void avg_fwd_kernel(Pool2dParams p, const T* __restrict__ x, T* __restrict__ y) {
  using A = typename Acc<T>::type;
  const int64_t total = p.planes() * p.out_plane();
  const A inv_area = A(1) / (A(p.kh) * A(p.kw));
  for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < total; o += (int64_t)gridDim.x * blockDim.x) {
    const Window win = clipped_window(p, o);
    const T* xp = x + win.plane * p.in_plane();
    A sum = 0;
    for (int64_t ih = win.hb; ih < win.he; ++ih)
      for (int64_t iw = win.wb; iw < win.we; ++iw) sum += to_acc(xp[ih * p.W + iw]);
    y[o] = from_acc<T>(sum * inv_area);
  }
}

// One thread per input element: the forward's prologue over the other index space.
template <typename T>
__global__ void avg_bwd_kernel(Pool2dParams p, const T* __restrict__ dy, T* __restrict__ dx) {
  using A = typename Acc<T>::type;
  const int64_t total = p.planes() * p.in_plane();
  const A inv_area = A(1) / (A(p.kh) * A(p.kw));
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t iw = i % p.W, ih = (i / p.W) % p.H, plane = i / p.in_plane();
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, p.sh, p.ph, p.kh, p.Ho, oh0, oh1);
    covering(iw, p.sw, p.pw, p.kw, p.Wo, ow0, ow1);
    const T* dyp = dy + plane * p.out_plane();
    A g = 0;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow) g += to_acc(dyp[oh * p.Wo + ow]);
    dx[i] = from_acc<T>(g * inv_area);
  }
}

// Typed launchers. float64: instantiated only in pooling_f64.cu (DK_CUDA_F64_TU), the one
// translation unit where ptxas allows double precision (docs/CUDA_STATIC.md).
template <typename T>
void avg_fwd(const Pool2dParams& p, const void* x, void* y, unsigned grid, cudaStream_t s) {
  if (tiled<T, false, true>(p, x, y, nullptr, nullptr, s)) return;  // windows tile the input: 16-byte kernels
  launch(avg_fwd_kernel<T>, grid, kThreads, 0, s, p, static_cast<const T*>(x), static_cast<T*>(y));
}

template <typename T>
void avg_bwd(const Pool2dParams& p, const void* dy, void* dx, unsigned grid, cudaStream_t s) {
  if (tiled<T, false, false>(p, dy, dx, nullptr, nullptr, s)) return;
  launch(avg_bwd_kernel<T>, grid, kThreads, 0, s, p, static_cast<const T*>(dy), static_cast<T*>(dx));
}

#ifdef DK_CUDA_F64_TU
template void avg_fwd<double>(const Pool2dParams&, const void*, void*, unsigned, cudaStream_t);
template void avg_bwd<double>(const Pool2dParams&, const void*, void*, unsigned, cudaStream_t);
#else
extern template void avg_fwd<double>(const Pool2dParams&, const void*, void*, unsigned, cudaStream_t);
extern template void avg_bwd<double>(const Pool2dParams&, const void*, void*, unsigned, cudaStream_t);
#endif

}  // namespace pool

#ifndef DK_CUDA_F64_TU  // the entry points: pooling.cu only
void avg_pool2d_forward(const Pool2dParams& p, DType dt, const void* x, void* y, uintptr_t stream) {
  pool::for_dtype(dt, "avg_pool2d_forward", p.planes() * p.out_plane(), stream,
                  [&](auto* tag, unsigned grid, cudaStream_t s) { pool::avg_fwd<DK_ELEM(tag)>(p, x, y, grid, s); });
}

void avg_pool2d_backward(const Pool2dParams& p, DType dt, const void* dy, void* dx, uintptr_t stream) {
  pool::for_dtype(dt, "avg_pool2d_backward", p.planes() * p.in_plane(), stream,
                  [&](auto* tag, unsigned grid, cudaStream_t s) { pool::avg_bwd<DK_ELEM(tag)>(p, dy, dx, grid, s); });
}
#endif

}  // namespace dk::cuda
