#pragma once
// What the depthwise kernels' headers share (conv2d_depthwise_impl.h, conv2d_depthwise_s2_impl.h):
// the vector layer, index helpers and the threading rule, inside this copy's DK_DW_NS.
#include "cpu/conv2d/conv2d_depthwise_isa.h"  // first, in its own include block: DK_DW_NS: this copy's namespace

#include <cstdint>
#include <cstring>

#include "common/conv_params.h"
#include "cpu/common/parallel.h"

// The pooling kernels' vector layer (register width, strided loads), instantiated in this copy's namespace.
#define DK_POOL_NS DK_DW_NS
#include "cpu/pooling/pooling_vec.h"
#undef DK_POOL_NS

namespace dk::cpu::DK_DW_NS {

#if defined(__GNUC__) && !defined(__clang__)
#define DK_DW_NO_VECTORIZE __attribute__((optimize("no-tree-vectorize")))
#else
#define DK_DW_NO_VECTORIZE
#endif

constexpr int kDwVecBytes = kVecBytes;

// The unsigned integer as wide as T (no std:: template in an ISA copy).
template <int Bytes>
struct UintOf;
template <>
struct UintOf<4> {
  typedef uint32_t type;
};
template <>
struct UintOf<8> {
  typedef uint64_t type;
};

inline int64_t dmin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t dmax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t cdiv(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
inline int64_t fdiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Taps i of a window starting at s0 with k taps d apart that land inside [0, n): [i_lo, i_hi).
inline void tap_range(int64_t s0, int64_t k, int64_t d, int64_t n, int64_t& i_lo, int64_t& i_hi) {
  i_lo = s0 >= 0 ? 0 : cdiv(-s0, d);
  i_hi = dmin(k, fdiv(n - 1 - s0, d) + 1);
  if (i_hi < i_lo) i_hi = i_lo;
}

// Output columns [lo, hi) whose input column ow*s + off lies in [0, W).
inline void live_ow(int64_t off, int64_t s, int64_t W, int64_t Wo, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : cdiv(-off, s);
  hi = W - 1 - off < 0 ? 0 : dmin((W - 1 - off) / s + 1, Wo);
  if (lo > hi) lo = hi;
}

// Whether all taps are finite.
template <typename T>
inline bool finite_taps(const T* wk, int64_t taps) {
  T z = T(0);
  for (int64_t t = 0; t < taps; ++t) z += wk[t] - wk[t];  // NaN once any is Inf or NaN
  return z == T(0);
}

// Interleaves e (even columns) and o (odd columns) into 2V values at dst: whole vectors when `room`
// values may be written there, else only the first `count` (the row's last, partial block).
template <typename T, int V, typename TV>
inline void store_zipped(T* dst, TV e, TV o, int64_t room, int64_t count) {
  const TV lo = permute2<ZipLo, V>(e, o), hi = permute2<ZipHi, V>(e, o);
  if (room >= 2 * V) {
    std::memcpy(dst, &lo, sizeof lo);
    std::memcpy(dst + V, &hi, sizeof hi);
  } else {
    T z[2 * V];
    std::memcpy(z, &lo, sizeof lo);
    std::memcpy(z + V, &hi, sizeof hi);
    std::memcpy(dst, z, sizeof(T) * size_t(count));
  }
}

// The exact sums of one plane (K = C; live taps only), one element at a time: for a channel with a
// non-finite weight (dx) or a plane whose vector dw sums are not finite (the padding zeros' products
// there may be 0 * Inf). dx or s (kh*kw dw sums) may be null.
template <typename T>
DK_DW_NO_VECTORIZE void plane_exact(const Conv2dParams& p, const T* x, const T* wk, const T* dy, T* dx, double* s) {
  if (dx) std::memset(dx, 0, sizeof(T) * size_t(p.in_plane()));
  if (s)
    for (int64_t t = 0; t < p.kh * p.kw; ++t) s[t] = 0.0;
  for (int64_t oh = 0; oh < p.Ho; ++oh)
    for (int64_t ow = 0; ow < p.Wo; ++ow) {
      const T gv = dy[oh * p.Wo + ow];
      for (int64_t i = 0; i < p.kh; ++i) {
        const int64_t ih = oh * p.sh - p.ph + i * p.dh;
        if (ih < 0 || ih >= p.H) continue;
        for (int64_t j = 0; j < p.kw; ++j) {
          const int64_t iw = ow * p.sw - p.pw + j * p.dw;
          if (iw < 0 || iw >= p.W) continue;
          if (dx) dx[ih * p.W + iw] += wk[i * p.kw + j] * gv;
          if (s) s[i * p.kw + j] += double(gv * x[ih * p.W + iw]);
        }
      }
    }
}

inline bool dw_parallel(const Conv2dParams& p) {
  return worth_threads(p.N * (p.C * p.in_plane() + p.K * p.out_plane()) * 4);
}

}  // namespace dk::cpu::DK_DW_NS
