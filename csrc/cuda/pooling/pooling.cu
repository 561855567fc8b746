// Pooling on the GPU. Forward: one thread per output element. Backward: one thread per
// *input* element that gathers from the outputs whose windows cover it, so overlapping
// windows need no atomics and the result is bitwise deterministic.
#include <cuda_runtime.h>

#include <stdexcept>

#include "cuda/common/launch.h"
#include "cuda/common/numeric.cuh"
#include "cuda/pooling/pooling.h"

namespace dk::cuda {

namespace {

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

// Calls fn with a value of the element type dt names (as a null typed pointer).
template <typename Fn>
void dispatch(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::Float32: fn(static_cast<float*>(nullptr)); break;
    case DType::Float64: fn(static_cast<double*>(nullptr)); break;
    case DType::Float16: fn(static_cast<__half*>(nullptr)); break;
    case DType::BFloat16: fn(static_cast<__nv_bfloat16*>(nullptr)); break;
    default: throw std::invalid_argument(std::string(op) + ": unsupported dtype");
  }
}

// Launches one element-type instance of a kernel over n threads' worth of work on the caller's
// stream, then turns a launch error into an exception naming the op.
template <typename Launch>
void launch(DType dt, const char* name, int64_t n, uintptr_t stream, Launch&& go) {
  if (n == 0) return;
  dispatch(dt, name, [&](auto* tag) { go(tag, grid_for(n, kThreads), as_stream(stream)); });
  check_launch(name);
}

}  // namespace

#define DK_ELEM(tag) std::remove_pointer_t<decltype(tag)>

void max_pool2d_forward(const Pool2dParams& p, DType dt, const void* x, void* y, int64_t* idx, uintptr_t stream) {
  launch(dt, "max_pool2d_forward", p.planes() * p.out_plane(), stream, [&](auto* tag, unsigned grid, cudaStream_t s) {
    using T = DK_ELEM(tag);
    max_fwd_kernel<T><<<grid, kThreads, 0, s>>>(p, static_cast<const T*>(x), static_cast<T*>(y), idx);
  });
}

void max_pool2d_backward(const Pool2dParams& p, DType dt, const void* dy, const int64_t* idx, void* dx,
                         uintptr_t stream) {
  launch(dt, "max_pool2d_backward", p.planes() * p.in_plane(), stream, [&](auto* tag, unsigned grid, cudaStream_t s) {
    using T = DK_ELEM(tag);
    max_bwd_kernel<T><<<grid, kThreads, 0, s>>>(p, static_cast<const T*>(dy), idx, static_cast<T*>(dx));
  });
}

void avg_pool2d_forward(const Pool2dParams& p, DType dt, const void* x, void* y, uintptr_t stream) {
  launch(dt, "avg_pool2d_forward", p.planes() * p.out_plane(), stream, [&](auto* tag, unsigned grid, cudaStream_t s) {
    using T = DK_ELEM(tag);
    avg_fwd_kernel<T><<<grid, kThreads, 0, s>>>(p, static_cast<const T*>(x), static_cast<T*>(y));
  });
}

void avg_pool2d_backward(const Pool2dParams& p, DType dt, const void* dy, void* dx, uintptr_t stream) {
  launch(dt, "avg_pool2d_backward", p.planes() * p.in_plane(), stream, [&](auto* tag, unsigned grid, cudaStream_t s) {
    using T = DK_ELEM(tag);
    avg_bwd_kernel<T><<<grid, kThreads, 0, s>>>(p, static_cast<const T*>(dy), static_cast<T*>(dx));
  });
}

#undef DK_ELEM

}  // namespace dk::cuda
