#pragma once
// conv2d as implicit GEMMs over NCHW tensors: the operand views (gathered on the fly, never
// materialised) and epilogues that the GEMM core (cuda/gemm/gemm_core.cuh) runs.
//   forward: M = N*Ho*Wo, N = K, k = C*kh*kw   A = im2col(x), B = w (K rows of C*kh*kw)
//   dgrad:   M = N*H*W,   N = C, k = K*kh*kw   A = dy gathered through the stride, B = w viewed per c
//   wgrad:   M = K,       N = C*kh*kw, k = N*Ho*Wo   A = dy (K rows, per image contiguous), B = im2col(x)^T
// With groups G each pass is G GEMMs of the same shape (C, K above read C/G, K/G) in one launch; every
// view below has `group(g)`, itself with its base pointer moved to group g's channels (gemm_core.cuh).
#include "common/conv_params.h"
#include "cuda/common/device.cuh"
#include "cuda/common/numeric.cuh"

namespace dk::cuda::conv {

// n / d for 0 <= n < 2^63 by a multiply-high and a shift (a 64-bit division is a ~70-instruction
// call on the GPU, and the gathers divide per element): m = ceil(2^(63+l) / d), l = ceil(log2 d),
// q = umulhi(n, m) >> (l - 1); exact for every d >= 1 (brute-force checked on the host).
struct FastDiv {
  int64_t d = 1;
  uint64_t m = 0;  // 0: d == 1
  int s = 0;
  FastDiv() = default;
  explicit FastDiv(int64_t d_) : d(d_) {
    if (d_ > 1) {
      int l = 0;
      while ((unsigned __int128)1 << l < (unsigned __int128)d_) ++l;
      m = uint64_t((((unsigned __int128)1 << (63 + l)) + (unsigned __int128)(d_ - 1)) / (unsigned __int128)d_);
      s = l - 1;
    }
  }
  __device__ __forceinline__ int64_t div(int64_t n) const {
    if (m == 0) return n;
#if defined(__CUDA_ARCH__)
    return int64_t(__umul64hi(uint64_t(n), m) >> s);
#else
    return int64_t(uint64_t(((unsigned __int128)uint64_t(n) * m) >> 64) >> s);
#endif
  }
};

// Forward A: row m = (n, oh, ow), k = (c, r, s) -> x[n, c, oh*sh - ph + r*dh, ow*sw - pw + s*dw] or 0.
template <typename T_>
struct Im2colRows {
  using T = T_;
  Conv2dParams p;
  const T* x;
  FastDiv P, Wo, RS, KW;
  int64_t group_step;  // C/G*H*W
  Im2colRows(const Conv2dParams& p_, const T* x_)
      : p(p_),
        x(x_),
        P(p_.Ho * p_.Wo),
        Wo(p_.Wo),
        RS(p_.kh * p_.kw),
        KW(p_.kw),
        group_step(p_.C / p_.G * p_.H * p_.W) {}
  __device__ Im2colRows group(int g) const {
    Im2colRows o = *this;
    o.x += g * group_step;
    return o;
  }
  struct Row {
    const T* xn;
    int64_t ih0, iw0;
  };
  __device__ Row row(int64_t m) const {
    const int64_t n = P.div(m), q = m - n * P.d, oh = Wo.div(q), ow = q - oh * p.Wo;
    return Row{x + n * p.C * p.H * p.W, oh * p.sh - p.ph, ow * p.sw - p.pw};
  }
  __device__ T load(const Row& r, int64_t k) const {
    const int64_t c = RS.div(k), rs = k - c * RS.d, kr = KW.div(rs), ks = rs - kr * p.kw;
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
  int64_t group_step = 0;  // elements between groups' rows
  __device__ RowsK group(int g) const { return RowsK{a + g * group_step, ld, group_step}; }
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
  FastDiv HW, W, RS, KW, SH, SW;
  int64_t group_step;  // K/G*Ho*Wo
  DyGather(const Conv2dParams& p_, const T* dy_)
      : p(p_),
        dy(dy_),
        HW(p_.H * p_.W),
        W(p_.W),
        RS(p_.kh * p_.kw),
        KW(p_.kw),
        SH(p_.sh),
        SW(p_.sw),
        group_step(p_.K / p_.G * p_.Ho * p_.Wo) {}
  __device__ DyGather group(int g) const {
    DyGather o = *this;
    o.dy += g * group_step;
    return o;
  }
  struct Row {
    const T* dyn;
    int64_t th, tw;  // h + ph, w + pw
  };
  __device__ Row row(int64_t m) const {
    const int64_t n = HW.div(m), q = m - n * HW.d, h = W.div(q), w = q - h * p.W;
    return Row{dy + n * p.K * p.Ho * p.Wo, h + p.ph, w + p.pw};
  }
  __device__ T load(const Row& r, int64_t k) const {
    const int64_t ko = RS.div(k), rs = k - ko * RS.d, kr = KW.div(rs), ks = rs - kr * p.kw;
    const int64_t uh = r.th - kr * p.dh, uw = r.tw - ks * p.dw;
    if (uh < 0 || uw < 0) return T(0);
    const int64_t oh = SH.div(uh), ow = SW.div(uw);
    if (oh * p.sh != uh || ow * p.sw != uw || oh >= p.Ho || ow >= p.Wo) return T(0);
    return r.dyn[(ko * p.Ho + oh) * p.Wo + ow];
  }
  __device__ const T* chunk(int64_t, int64_t) const { return dy; }  // never async
};

// Dgrad B: row c, k = (ko, r, s) -> w[ko, c, r, s] (w is (K, C/G, kh, kw)).
template <typename T_>
struct WeightPerChannel {
  using T = T_;
  const T* w;
  int64_t ko_step;     // C/G*kh*kw
  int64_t group_step;  // K/G*C/G*kh*kw
  FastDiv RS;
  WeightPerChannel(const Conv2dParams& p_, const T* w_)
      : w(w_), ko_step(p_.crs()), group_step(p_.K / p_.G * p_.crs()), RS(p_.kh * p_.kw) {}
  __device__ WeightPerChannel group(int g) const {
    WeightPerChannel o = *this;
    o.w += g * group_step;
    return o;
  }
  struct Row {
    const T* wc;
  };
  __device__ Row row(int64_t c) const { return Row{w + c * RS.d}; }
  __device__ T load(const Row& r, int64_t k) const {
    const int64_t ko = RS.div(k), rs = k - ko * RS.d;
    return r.wc[ko * ko_step + rs];
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
  FastDiv P;
  int64_t group_step;  // K/G*Ho*Wo
  DyRows(const Conv2dParams& p_, const T* dy_)
      : p(p_), dy(dy_), P(p_.Ho * p_.Wo), group_step(p_.K / p_.G * p_.Ho * p_.Wo) {}
  __device__ DyRows group(int g) const {
    DyRows o = *this;
    o.dy += g * group_step;
    return o;
  }
  struct Row {
    const T* dyk;
  };
  __device__ Row row(int64_t ko) const { return Row{dy + ko * P.d}; }
  __device__ T load(const Row& r, int64_t k) const {
    const int64_t n = P.div(k), q = k - n * P.d;
    return r.dyk[n * p.K * P.d + q];
  }
  __device__ const T* chunk(int64_t ko, int64_t k) const {
    const int64_t n = P.div(k), q = k - n * P.d;
    return dy + (n * p.K + ko) * P.d + q;
  }
};

// Wgrad B: row (c, r, s), k = (n, oh, ow) -> x[n, c, oh*sh - ph + r*dh, ow*sw - pw + s*dw] or 0.
template <typename T_>
struct Im2colCols {
  using T = T_;
  Conv2dParams p;
  const T* x;
  FastDiv RS, KW, P, Wo;
  int64_t group_step;  // C/G*H*W
  Im2colCols(const Conv2dParams& p_, const T* x_)
      : p(p_),
        x(x_),
        RS(p_.kh * p_.kw),
        KW(p_.kw),
        P(p_.Ho * p_.Wo),
        Wo(p_.Wo),
        group_step(p_.C / p_.G * p_.H * p_.W) {}
  __device__ Im2colCols group(int g) const {
    Im2colCols o = *this;
    o.x += g * group_step;
    return o;
  }
  struct Row {
    const T* xc;
    int64_t hoff, woff;
  };
  __device__ Row row(int64_t crs) const {
    const int64_t c = RS.div(crs), rs = crs - c * RS.d, kr = KW.div(rs), ks = rs - kr * p.kw;
    return Row{x + c * p.H * p.W, kr * p.dh - p.ph, ks * p.dw - p.pw};
  }
  __device__ T load(const Row& r, int64_t k) const {
    const int64_t n = P.div(k), q = k - n * P.d, oh = Wo.div(q), ow = q - oh * p.Wo;
    const int64_t ih = oh * p.sh + r.hoff, iw = ow * p.sw + r.woff;
    if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) return T(0);
    return r.xc[n * p.C * p.H * p.W + ih * p.W + iw];
  }
  __device__ const T* chunk(int64_t, int64_t) const { return x; }  // never async
};

// Epilogue of the forward: y[n, k, q] = acc + b[k] (b may be null); group g's k start at g*group_planes.
template <typename T, typename A>
struct StoreNchwBias {
  T* y;
  const T* b;
  int64_t planes;                          // K (or C for dx)
  int64_t group_planes;                    // K/G (or C/G)
  FastDiv plane;                           // Ho*Wo (or H*W)
  static constexpr bool kNoSplitK = true;  // forward and dgrad reduce over C*kh*kw / K*kh*kw unsplit
  StoreNchwBias(T* y_, const T* b_, int64_t planes_, int64_t group_planes_, int64_t plane_)
      : y(y_), b(b_), planes(planes_), group_planes(group_planes_), plane(plane_) {}
  __device__ StoreNchwBias group(int g) const {
    StoreNchwBias o = *this;
    o.y += g * group_planes * plane.d;
    if (b != nullptr) o.b += g * group_planes;
    return o;
  }
  __device__ void operator()(int64_t m, int64_t k, A v) const {
    const int64_t n = plane.div(m), q = m - n * plane.d;
    if (b != nullptr) v += to_acc(b[k]);
    y[(n * planes + k) * plane.d + q] = from_acc<T>(v);
  }
};

// Epilogue of a row-major result: out[m*ld + n] = acc (dw, with ld = C/G*kh*kw; group g's rows from
// g*group_step elements on).
template <typename T, typename A>
struct StoreRows {
  T* out;
  int64_t ld;
  int64_t group_step = 0;
  __device__ StoreRows group(int g) const { return StoreRows{out + g * group_step, ld, group_step}; }
  __device__ void operator()(int64_t m, int64_t n, A v) const { out[m * ld + n] = from_acc<T>(v); }
};

}  // namespace dk::cuda::conv
