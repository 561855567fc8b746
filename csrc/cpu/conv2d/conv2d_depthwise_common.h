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

inline bool dw_parallel(const Conv2dParams& p) {
  return worth_threads(p.N * (p.C * p.in_plane() + p.K * p.out_plane()) * 4);
}

}  // namespace dk::cpu::DK_DW_NS
