#pragma once
// conv2d as implicit GEMMs over NCHW tensors: the operand views (gathered on the fly, never
// materialised) and epilogues that the GEMM core (cuda/gemm/gemm_core.cuh) runs.
//   forward: M = N*Ho*Wo, N = K, k = C*kh*kw   A = im2col(x), B = w (K rows of C*kh*kw)
//   dgrad:   M = N*H*W,   N = C, k = K*kh*kw   A = dy gathered through the stride, B = w viewed per c
//   wgrad:   M = K,       N = C*kh*kw, k = N*Ho*Wo   A = dy (K rows, per image contiguous), B = im2col(x)^T
#include "common/conv_params.h"
#include "cuda/common/device.cuh"
#include "cuda/common/numeric.cuh"

namespace dk::cuda::conv {

// Forward A: row m = (n, oh, ow), k = (c, r, s) -> x[n, c, oh*sh - ph + r*dh, ow*sw - pw + s*dw] or 0.
template <typename T_>
struct Im2colRows {
  using T = T_;
  Conv2dParams p;
  const T* x;
  struct Row {
    const T* xn;
    int64_t ih0, iw0;
  };
  __device__ Row row(int64_t m) const {
    const int64_t P = p.Ho * p.Wo, n = m / P, q = m - n * P, oh = q / p.Wo, ow = q - oh * p.Wo;
    return Row{x + n * p.C * p.H * p.W, oh * p.sh - p.ph, ow * p.sw - p.pw};
  }
  __device__ T load(const Row& r, int64_t k) const {
    const int64_t RS = p.kh * p.kw, c = k / RS, rs = k - c * RS, kr = rs / p.kw, ks = rs - kr * p.kw;
    const int64_t ih = r.ih0 + kr * p.dh, iw = r.iw0 + ks * p.dw;
    if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) return T(0);
    return r.xn[(c * p.H + ih) * p.W + iw];
  }
  __device__ const T* chunk(int64_t, int64_t) const { return x; }  // never async
};

// A row-major matrix read along its rows: element (r, k) at a[r*ld + k]; k-contiguous, so it can be
// staged with cp.async when ld and the base are 16-byte aligned (the launcher checks).
template <typename T_>
struct RowsK {
  using T = T_;
  const T* a;
  int64_t ld;
  struct Row {
    const T* p;
  };
  __device__ Row row(int64_t r) const { return Row{a + r * ld}; }
  __device__ T load(const Row& r, int64_t k) const { return r.p[k]; }
  __device__ const T* chunk(int64_t r, int64_t k) const { return a + r * ld + k; }
};

// Dgrad A: row m = (n, h, w), k = (ko, r, s) -> dy[n, ko, oh, ow] where h = oh*sh - ph + r*dh (and the
// same for w), or 0 where no output position reaches (h, w) through tap (r, s).
template <typename T_>
struct DyGather {
  using T = T_;
  Conv2dParams p;
  const T* dy;
  struct Row {
    const T* dyn;
    int64_t th, tw;  // h + ph, w + pw
  };
  __device__ Row row(int64_t m) const {
    const int64_t HW = p.H * p.W, n = m / HW, q = m - n * HW, h = q / p.W, w = q - h * p.W;
    return Row{dy + n * p.K * p.Ho * p.Wo, h + p.ph, w + p.pw};
  }
  __device__ T load(const Row& r, int64_t k) const {
    const int64_t RS = p.kh * p.kw, ko = k / RS, rs = k - ko * RS, kr = rs / p.kw, ks = rs - kr * p.kw;
    const int64_t uh = r.th - kr * p.dh, uw = r.tw - ks * p.dw;
    if (uh < 0 || uw < 0) return T(0);
    const int64_t oh = uh / p.sh, ow = uw / p.sw;
    if (oh * p.sh != uh || ow * p.sw != uw || oh >= p.Ho || ow >= p.Wo) return T(0);
    return r.dyn[(ko * p.Ho + oh) * p.Wo + ow];
  }
  __device__ const T* chunk(int64_t, int64_t) const { return dy; }  // never async
};

// Dgrad B: row c, k = (ko, r, s) -> w[ko, c, r, s].
template <typename T_>
struct WeightPerChannel {
  using T = T_;
  Conv2dParams p;
  const T* w;
  struct Row {
    const T* wc;
  };
  __device__ Row row(int64_t c) const { return Row{w + c * p.kh * p.kw}; }
  __device__ T load(const Row& r, int64_t k) const {
    const int64_t RS = p.kh * p.kw, ko = k / RS, rs = k - ko * RS;
    return r.wc[ko * p.C * RS + rs];
  }
  __device__ const T* chunk(int64_t, int64_t) const { return w; }  // never async
};

// Wgrad A: row ko, k = (n, q) -> dy[n, ko, q]; contiguous within an image, so cp.async-able when
// Ho*Wo is a multiple of the 16-byte vector (a chunk never straddles two images).
template <typename T_>
struct DyRows {
  using T = T_;
  Conv2dParams p;
  const T* dy;
  struct Row {
    const T* dyk;
  };
  __device__ Row row(int64_t ko) const { return Row{dy + ko * p.Ho * p.Wo}; }
  __device__ T load(const Row& r, int64_t k) const {
    const int64_t P = p.Ho * p.Wo, n = k / P, q = k - n * P;
    return r.dyk[n * p.K * P + q];
  }
  __device__ const T* chunk(int64_t ko, int64_t k) const {
    const int64_t P = p.Ho * p.Wo, n = k / P, q = k - n * P;
    return dy + (n * p.K + ko) * P + q;
  }
};

// Wgrad B: row (c, r, s), k = (n, oh, ow) -> x[n, c, oh*sh - ph + r*dh, ow*sw - pw + s*dw] or 0.
template <typename T_>
struct Im2colCols {
  using T = T_;
  Conv2dParams p;
  const T* x;
  struct Row {
    const T* xc;
    int64_t hoff, woff;
  };
  __device__ Row row(int64_t crs) const {
    const int64_t RS = p.kh * p.kw, c = crs / RS, rs = crs - c * RS, kr = rs / p.kw, ks = rs - kr * p.kw;
    return Row{x + c * p.H * p.W, kr * p.dh - p.ph, ks * p.dw - p.pw};
  }
  __device__ T load(const Row& r, int64_t k) const {
    const int64_t P = p.Ho * p.Wo, n = k / P, q = k - n * P, oh = q / p.Wo, ow = q - oh * p.Wo;
    const int64_t ih = oh * p.sh + r.hoff, iw = ow * p.sw + r.woff;
    if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) return T(0);
    return r.xc[n * p.C * p.H * p.W + ih * p.W + iw];
  }
  __device__ const T* chunk(int64_t, int64_t) const { return x; }  // never async
};

// Epilogue of the forward: y[n, k, q] = acc + b[k] (b may be null).
template <typename T, typename A>
struct StoreNchwBias {
  T* y;
  const T* b;
  int64_t planes, plane;  // K, Ho*Wo
  __device__ void operator()(int64_t m, int64_t k, A v) const {
    const int64_t n = m / plane, q = m - n * plane;
    if (b != nullptr) v += to_acc(b[k]);
    y[(n * planes + k) * plane + q] = from_acc<T>(v);
  }
};

// Epilogue of a row-major result: out[m*ld + n] = acc (dw, with ld = C*kh*kw).
template <typename T, typename A>
struct StoreRows {
  T* out;
  int64_t ld;
  __device__ void operator()(int64_t m, int64_t n, A v) const { out[m * ld + n] = from_acc<T>(v); }
};

}  // namespace dk::cuda::conv
