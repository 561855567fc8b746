#pragma once
// Pooling kernels on the GPU and one typed launcher per kernel. Forward: one thread per output
// element. Backward: one thread per *input* element that gathers from the outputs whose windows
// cover it, so overlapping windows need no atomics and the result is bitwise deterministic.
// The float64 launchers are instantiated only in pooling_f64.cu (see docs/CUDA_STATIC.md, "float64").
#include <cuda_runtime.h>

#include "common/pool_params.h"
#include "cuda/common/launch.h"
#include "cuda/common/numeric.cuh"

namespace dk::cuda::pooling {

constexpr int kThreads = 256;

// Output positions o along one axis whose window [o*s - pad, o*s - pad + k) covers i.
__device__ __forceinline__ void covering(int64_t i, int64_t s, int64_t pad, int64_t k, int64_t out, int64_t& lo,
                                         int64_t& hi) {
  const int64_t first = i + pad - k + 1;  // smallest o*s allowed
  lo = first <= 0 ? 0 : (first + s - 1) / s;
  hi = (i + pad) / s;
  if (hi > out - 1) hi = out - 1;
}

template <typename T>
__global__ void max_fwd_kernel(Pool2dParams p, const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ idx) {
  using A = typename Acc<T>::type;
  const int64_t total = p.planes() * p.out_plane();
  for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < total; o += (int64_t)gridDim.x * blockDim.x) {
    const int64_t ow = o % p.Wo, oh = (o / p.Wo) % p.Ho, plane = o / p.out_plane();
    const T* xp = x + plane * p.in_plane();
    const int64_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
    const int64_t hb = max(h0, (int64_t)0), he = min(h0 + p.kh, p.H);
    const int64_t wb = max(w0, (int64_t)0), we = min(w0 + p.kw, p.W);
    A best = -INFINITY;
    int64_t best_at = hb * p.W + wb;
    for (int64_t ih = hb; ih < he; ++ih)
      for (int64_t iw = wb; iw < we; ++iw) {
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

template <typename T>
__global__ void avg_fwd_kernel(Pool2dParams p, const T* __restrict__ x, T* __restrict__ y) {
  using A = typename Acc<T>::type;
  const int64_t total = p.planes() * p.out_plane();
  const A inv_area = A(1) / (A(p.kh) * A(p.kw));
  for (int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; o < total; o += (int64_t)gridDim.x * blockDim.x) {
    const int64_t ow = o % p.Wo, oh = (o / p.Wo) % p.Ho, plane = o / p.out_plane();
    const T* xp = x + plane * p.in_plane();
    const int64_t h0 = oh * p.sh - p.ph, w0 = ow * p.sw - p.pw;
    const int64_t hb = max(h0, (int64_t)0), he = min(h0 + p.kh, p.H);
    const int64_t wb = max(w0, (int64_t)0), we = min(w0 + p.kw, p.W);
    A sum = 0;
    for (int64_t ih = hb; ih < he; ++ih)
      for (int64_t iw = wb; iw < we; ++iw) sum += to_acc(xp[ih * p.W + iw]);
    y[o] = from_acc<T>(sum * inv_area);
  }
}

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

template <typename T>
void max_fwd(const Pool2dParams& p, const void* x, void* y, int64_t* idx, cudaStream_t s) {
  max_fwd_kernel<T><<<grid_for(p.planes() * p.out_plane(), kThreads), kThreads, 0, s>>>(
      p, static_cast<const T*>(x), static_cast<T*>(y), idx);
}

template <typename T>
void max_bwd(const Pool2dParams& p, const void* dy, const int64_t* idx, void* dx, cudaStream_t s) {
  max_bwd_kernel<T><<<grid_for(p.planes() * p.in_plane(), kThreads), kThreads, 0, s>>>(
      p, static_cast<const T*>(dy), idx, static_cast<T*>(dx));
}

template <typename T>
void avg_fwd(const Pool2dParams& p, const void* x, void* y, cudaStream_t s) {
  avg_fwd_kernel<T><<<grid_for(p.planes() * p.out_plane(), kThreads), kThreads, 0, s>>>(
      p, static_cast<const T*>(x), static_cast<T*>(y));
}

template <typename T>
void avg_bwd(const Pool2dParams& p, const void* dy, void* dx, cudaStream_t s) {
  avg_bwd_kernel<T><<<grid_for(p.planes() * p.in_plane(), kThreads), kThreads, 0, s>>>(
      p, static_cast<const T*>(dy), static_cast<T*>(dx));
}

// Compiled in pooling_f64.cu, the one TU where ptxas allows double precision.
extern template void max_fwd<double>(const Pool2dParams&, const void*, void*, int64_t*, cudaStream_t);
extern template void max_bwd<double>(const Pool2dParams&, const void*, const int64_t*, void*, cudaStream_t);
extern template void avg_fwd<double>(const Pool2dParams&, const void*, void*, cudaStream_t);
extern template void avg_bwd<double>(const Pool2dParams&, const void*, void*, cudaStream_t);

}  // namespace dk::cuda::pooling
