#pragma once
// Depthwise conv2d (groups == C, K = m*C: output k reads input channel k / m only) as direct kernels:
// a GEMM per group would have M = m rows and waste a 128-row tile. One thread per output (forward)
// or per input element (dx, a gather over the m outputs and the taps: no atomics); dw is one block
// per weight (k, r, s) reducing over N*Ho*Wo in a fixed-order tree (deterministic). All in the
// accumulator type (float for float16/float32, double for float64). Floors: benchmarks/results/cuda_conv.md.
#include "common/conv_params.h"
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/numeric.cuh"
#include "cuda/conv2d/conv2d_operands.cuh"
#include "cuda/gemm/gemm_core.cuh"

namespace dk::cuda::conv {

// The divisors the depthwise kernels index with (host-built).
struct DwShape {
  Conv2dParams p;
  int64_t mult;  // K / C
  FastDiv P, Wo, K, HW, W, C, M, SH, SW, RS, KW;
  explicit DwShape(const Conv2dParams& p_)
      : p(p_),
        mult(p_.K / p_.C),
        P(p_.Ho * p_.Wo),
        Wo(p_.Wo),
        K(p_.K),
        HW(p_.H * p_.W),
        W(p_.W),
        C(p_.C),
        M(p_.K / p_.C),
        SH(p_.sh),
        SW(p_.sw),
        RS(p_.kh * p_.kw),
        KW(p_.kw) {}
};

constexpr int kDwThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kDwThreads)
    dw_forward_kernel(DwShape s, const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                      T* __restrict__ y) {
  using A = typename Acc<T>::type;
  const Conv2dParams& p = s.p;
  const int64_t total = p.N * p.K * s.P.d;
  for (int64_t i = blockIdx.x * int64_t(kDwThreads) + threadIdx.x; i < total; i += int64_t(gridDim.x) * kDwThreads) {
    const int64_t nk = s.P.div(i), q = i - nk * s.P.d, oh = s.Wo.div(q), ow = q - oh * p.Wo;
    const int64_t n = s.K.div(nk), k = nk - n * p.K, c = s.M.div(k);
    const T* xc = x + (n * p.C + c) * p.H * p.W;
    const T* wk = w + k * p.kh * p.kw;
    const int64_t ih0 = oh * p.sh - p.ph, iw0 = ow * p.sw - p.pw;
    A acc = A(0);
#pragma unroll 1
    for (int64_t r = 0; r < p.kh; ++r) {
      const int64_t ih = ih0 + r * p.dh;
      if (ih < 0 || ih >= p.H) continue;
#pragma unroll 1
      for (int64_t t = 0; t < p.kw; ++t) {
        const int64_t iw = iw0 + t * p.dw;
        if (iw < 0 || iw >= p.W) continue;
        acc = gemm::madd(to_acc(xc[ih * p.W + iw]), to_acc(wk[r * p.kw + t]), acc);
      }
    }
    if (b != nullptr) acc += to_acc(b[k]);
    y[i] = from_acc<T>(acc);
  }
}

// dx[n, c, h, w] = sum over the m outputs k of channel c and the taps (r, t) that reach (h, w).
template <typename T>
__global__ void __launch_bounds__(kDwThreads)
    dw_dgrad_kernel(DwShape s, const T* __restrict__ w, const T* __restrict__ dy, T* __restrict__ dx) {
  using A = typename Acc<T>::type;
  const Conv2dParams& p = s.p;
  const int64_t total = p.N * p.C * s.HW.d;
  for (int64_t i = blockIdx.x * int64_t(kDwThreads) + threadIdx.x; i < total; i += int64_t(gridDim.x) * kDwThreads) {
    const int64_t nc = s.HW.div(i), q = i - nc * s.HW.d, h = s.W.div(q), wi = q - h * p.W;
    const int64_t n = s.C.div(nc), c = nc - n * p.C;
    A acc = A(0);
#pragma unroll 1
    for (int64_t j = 0; j < s.mult; ++j) {
      const int64_t k = c * s.mult + j;
      const T* dyk = dy + (n * p.K + k) * s.P.d;
      const T* wk = w + k * p.kh * p.kw;
#pragma unroll 1
      for (int64_t r = 0; r < p.kh; ++r) {
        const int64_t uh = h + p.ph - r * p.dh;
        if (uh < 0) continue;
        const int64_t oh = s.SH.div(uh);
        if (oh * p.sh != uh || oh >= p.Ho) continue;
#pragma unroll 1
        for (int64_t t = 0; t < p.kw; ++t) {
          const int64_t uw = wi + p.pw - t * p.dw;
          if (uw < 0) continue;
          const int64_t ow = s.SW.div(uw);
          if (ow * p.sw != uw || ow >= p.Wo) continue;
          acc = gemm::madd(to_acc(dyk[oh * p.Wo + ow]), to_acc(wk[r * p.kw + t]), acc);
        }
      }
    }
    dx[i] = from_acc<T>(acc);
  }
}

// dw[k, 0, r, t] = sum over n, oh, ow of dy[n, k, oh, ow] * x[n, k / m, ih, iw]: one block per weight.
template <typename T>
__global__ void __launch_bounds__(kDwThreads)
    dw_wgrad_kernel(DwShape s, const T* __restrict__ x, const T* __restrict__ dy, T* __restrict__ dwt) {
  using A = typename Acc<T>::type;
  __shared__ A part[kDwThreads];
  const Conv2dParams& p = s.p;
  const int64_t kk = blockIdx.x, k = s.RS.div(kk), rs = kk - k * s.RS.d, r = s.KW.div(rs), t = rs - r * p.kw;
  const int64_t c = s.M.div(k), hoff = r * p.dh - p.ph, woff = t * p.dw - p.pw;
  A acc = A(0);
  const int64_t total = p.N * s.P.d;
  for (int64_t i = threadIdx.x; i < total; i += kDwThreads) {
    const int64_t n = s.P.div(i), q = i - n * s.P.d, oh = s.Wo.div(q), ow = q - oh * p.Wo;
    const int64_t ih = oh * p.sh + hoff, iw = ow * p.sw + woff;
    if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) continue;
    acc = gemm::madd(to_acc(dy[(n * p.K + k) * s.P.d + q]), to_acc(x[((n * p.C + c) * p.H + ih) * p.W + iw]), acc);
  }
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int h = kDwThreads / 2; h > 0; h >>= 1) {
    if (int(threadIdx.x) < h) part[threadIdx.x] += part[threadIdx.x + h];
    __syncthreads();
  }
  if (threadIdx.x == 0) dwt[kk] = from_acc<T>(part[0]);
}

template <typename T>
void depthwise_forward(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y, cudaStream_t st) {
  const int64_t total = p.N * p.K * p.out_plane();
  if (total > 0)
    launch(dw_forward_kernel<T>, dim3(grid_for(total, kDwThreads)), dim3(kDwThreads), 0, st, DwShape(p), x, w, b, y);
}

template <typename T>
void depthwise_dgrad(const Conv2dParams& p, const T* w, const T* dy, T* dx, cudaStream_t st) {
  const int64_t total = p.N * p.C * p.in_plane();
  if (total > 0)
    launch(dw_dgrad_kernel<T>, dim3(grid_for(total, kDwThreads)), dim3(kDwThreads), 0, st, DwShape(p), w, dy, dx);
}

template <typename T>
void depthwise_wgrad(const Conv2dParams& p, const T* x, const T* dy, T* dwt, cudaStream_t st) {
  const int64_t weights = p.K * p.kh * p.kw;
  if (weights > 0) launch(dw_wgrad_kernel<T>, dim3(unsigned(weights)), dim3(kDwThreads), 0, st, DwShape(p), x, dy, dwt);
}

// float64 instances live in conv2d_f64.cu only (docs/CUDA_STATIC.md, "float64").
extern template void depthwise_forward<double>(const Conv2dParams&, const double*, const double*, const double*,
                                               double*, cudaStream_t);
extern template void depthwise_dgrad<double>(const Conv2dParams&, const double*, const double*, double*, cudaStream_t);
extern template void depthwise_wgrad<double>(const Conv2dParams&, const double*, const double*, double*, cudaStream_t);

}  // namespace dk::cuda::conv
