#pragma once
// Max pooling on the GPU. Forward: one thread per output element (value and argmax). Backward:
// one thread per *input* element gathering from the outputs whose windows cover it, so
// overlapping windows need no atomics and the result is bitwise deterministic.
#include "cuda/pooling/pool_common.cuh"
#include "cuda/pooling/pool_tiled.cuh"

namespace dk::cuda {
namespace pool {

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

// Typed launchers: the tiled kernels where the windows tile the input, else the gather kernels.
// float64 instances live in pooling_f64.cu only (docs/CUDA_STATIC.md, "float64").
template <typename T>
void max_fwd(const Pool2dParams& p, const void* x, void* y, int64_t* idx, cudaStream_t s) {
  if (tiled<T, true, true>(p, x, y, nullptr, idx, s)) return;
  launch(max_fwd_kernel<T>, grid_for(p.planes() * p.out_plane(), kThreads), kThreads, 0, s, p,
         static_cast<const T*>(x), static_cast<T*>(y), idx);
}

template <typename T>
void max_bwd(const Pool2dParams& p, const void* dy, const int64_t* idx, void* dx, cudaStream_t s) {
  if (tiled<T, true, false>(p, dy, dx, idx, nullptr, s)) return;
  launch(max_bwd_kernel<T>, grid_for(p.planes() * p.in_plane(), kThreads), kThreads, 0, s, p,
         static_cast<const T*>(dy), idx, static_cast<T*>(dx));
}

extern template void max_fwd<double>(const Pool2dParams&, const void*, void*, int64_t*, cudaStream_t);
extern template void max_bwd<double>(const Pool2dParams&, const void*, const int64_t*, void*, cudaStream_t);

}  // namespace pool
}  // namespace dk::cuda
