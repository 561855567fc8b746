// 2x2 windows, stride 2, no padding (the most common pooling). The windows tile the plane, so the
// forward reads each input once and the backward writes each input once (no zero-fill pass; an
// odd last row or column belongs to no window and is zeroed).
//
// Output rows go in blocks of V columns (a register's worth of int64 indices, or half; the last block
// may overlap the one before it, which recomputes identical values): the four candidates of each
// window are de-interleaved from two loads per input row. Narrower rows use scalar code.
// (Per-element code here compiles to data-dependent branches, which on random data mispredict:
// a 24-wide image ran 15x slower than a 48-wide one before the blocks.)
// Included by pooling_impl.h inside its per-ISA namespace; see pooling_vec.h.
#pragma once
#ifndef DK_POOL_NS
#error "include pooling_2x2_impl.h through pooling_impl.h"
#endif

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/pool_params.h"
#include "cpu/common/parallel.h"
#include "cpu/pooling/pooling_vec.h"

namespace dk::cpu::DK_POOL_NS {

// Vector types are declared inside each function: GCC drops vector_size from a dependent typedef
// that is a class member.
// (Nor may `auto` be deduced from them: GCC 12 deduces the element type.)
#define DK_POOL_2X2_VECTORS                                 \
  typedef T TV __attribute__((vector_size(V * sizeof(T)))); \
  typedef int64_t IV __attribute__((vector_size(V * sizeof(int64_t))))

// Integer lanes as wide as T: the lane type of a comparison of T vectors.
template <typename T>
using MaskInt = typename std::conditional<sizeof(T) == 4, int32_t, int64_t>::type;

// {0, 2, 4, ...}: each window's left column, relative to the block's first.
template <typename IV, int V>
inline IV twice_lane() {
  IV v;
  for (int k = 0; k < V; ++k) v[k] = 2 * k;
  return v;
}

// Windows col .. col+V-1 of one output row: r0 / r1 are the window's two input rows, row_base the
// in-plane position of r0[0]. Candidates compared in row-major order (a, b / c, d); a value
// replaces the max if it is greater or NaN (PyTorch's rule).
template <typename T, int V>
inline void max_2x2_block(const T* r0, const T* r1, int64_t W, int64_t row_base, int64_t col, T* y, int64_t* idx) {
  DK_POOL_2X2_VECTORS;
  TV lo, hi;
  std::memcpy(&lo, r0 + 2 * col, sizeof lo);
  std::memcpy(&hi, r0 + 2 * col + V, sizeof hi);
  const TV a = permute2<Even, V>(lo, hi), b = permute2<Odd, V>(lo, hi);
  std::memcpy(&lo, r1 + 2 * col, sizeof lo);
  std::memcpy(&hi, r1 + 2 * col + V, sizeof hi);
  const TV c = permute2<Even, V>(lo, hi), d = permute2<Odd, V>(lo, hi);
  IV zero = {};
  TV best = a;
  IV at = zero;  // the winner's offset from the window's first element: 0, 1, W or W + 1
  typedef MaskInt<T> TM __attribute__((vector_size(V * sizeof(MaskInt<T>))));  // TV's lane mask
  TM take = (b > best) | (b != b);
  best = take ? b : best;
  at = mask_for<IV>(take) ? zero + 1 : at;
  take = (c > best) | (c != c);
  best = take ? c : best;
  at = mask_for<IV>(take) ? zero + W : at;
  take = (d > best) | (d != d);
  best = take ? d : best;
  at = mask_for<IV>(take) ? zero + (W + 1) : at;
  at += twice_lane<IV, V>() + (row_base + 2 * col);
  std::memcpy(y + col, &best, sizeof best);
  std::memcpy(idx + col, &at, sizeof at);
}

// The backward of max_2x2_block: each window's gradient g goes to the input its index names.
template <typename T, int V>
inline void max_2x2_block_backward(const T* g, const int64_t* idx, int64_t W, int64_t row_base, int64_t col, T* r0,
                                   T* r1) {
  DK_POOL_2X2_VECTORS;
  TV gv;
  IV off;
  std::memcpy(&gv, g + col, sizeof gv);
  std::memcpy(&off, idx + col, sizeof off);
  off -= twice_lane<IV, V>() + (row_base + 2 * col);  // 0, 1, W or W + 1
  IV izero = {};
  TV zero = {};
  const TV e0 = mask_for<TV>(off == izero) ? gv : zero;
  const TV o0 = mask_for<TV>(off == izero + 1) ? gv : zero;
  const TV e1 = mask_for<TV>(off == izero + W) ? gv : zero;
  const TV o1 = mask_for<TV>(off == izero + (W + 1)) ? gv : zero;
  TV out = permute2<ZipLo, V>(e0, o0);
  std::memcpy(r0 + 2 * col, &out, sizeof out);
  out = permute2<ZipHi, V>(e0, o0);
  std::memcpy(r0 + 2 * col + V, &out, sizeof out);
  out = permute2<ZipLo, V>(e1, o1);
  std::memcpy(r1 + 2 * col, &out, sizeof out);
  out = permute2<ZipHi, V>(e1, o1);
  std::memcpy(r1 + 2 * col + V, &out, sizeof out);
}

// Average of each window: (((0 + a) + b) + c) + d, then * 1/4: the same additions in the same
// order as the generic path and PyTorch, so the same rounding; the leading 0 makes a window of
// -0.0s average to +0.0, as theirs does.
template <typename T, int V>
inline void avg_2x2_block(const T* r0, const T* r1, int64_t col, T* y) {
  typedef T TV __attribute__((vector_size(V * sizeof(T))));
  TV lo, hi;
  std::memcpy(&lo, r0 + 2 * col, sizeof lo);
  std::memcpy(&hi, r0 + 2 * col + V, sizeof hi);
  TV sum = TV{} + permute2<Even, V>(lo, hi);
  sum += permute2<Odd, V>(lo, hi);
  std::memcpy(&lo, r1 + 2 * col, sizeof lo);
  std::memcpy(&hi, r1 + 2 * col + V, sizeof hi);
  sum += permute2<Even, V>(lo, hi);
  sum += permute2<Odd, V>(lo, hi);
  sum *= T(1) / (T(2) * T(2));
  std::memcpy(y + col, &sum, sizeof sum);
}

// The backward of average pooling: a quarter of each window's gradient to each of its inputs.
template <typename T, int V>
inline void avg_2x2_block_backward(const T* g, int64_t col, T* r0, T* r1) {
  typedef T TV __attribute__((vector_size(V * sizeof(T))));
  TV gv;
  std::memcpy(&gv, g + col, sizeof gv);
  gv *= T(0.25);
  const TV lo = permute2<ZipLo, V>(gv, gv), hi = permute2<ZipHi, V>(gv, gv);
  std::memcpy(r0 + 2 * col, &lo, sizeof lo);
  std::memcpy(r0 + 2 * col + V, &hi, sizeof hi);
  std::memcpy(r1 + 2 * col, &lo, sizeof lo);
  std::memcpy(r1 + 2 * col + V, &hi, sizeof hi);
}

// Calls block.template run<V>(col) over an output row of Wo >= V columns in blocks of V, the last
// one ending at Wo.
template <int V, typename Block>
inline void blocks_over_row(int64_t Wo, const Block& block) {
  for (int64_t c = 0; c < Wo; c += V) block.template run<V>(c + V <= Wo ? c : Wo - V);
}

// One output row: blocks as wide as a register of int64 indices, or half that, or two (AVX-512's
// 2- and 3-wide rows: scalar code there branches on the data, 4x slower on fresh activations),
// or scalar code.
template <typename Block>
inline void row_2x2(int64_t Wo, const Block& block) {
  constexpr int V = kVecBytes / 8 >= 2 ? kVecBytes / 8 : 2;
  if (Wo >= V)
    blocks_over_row<V>(Wo, block);
  else if (V >= 4 && Wo >= V / 2)
    blocks_over_row<(V >= 4 ? V / 2 : 2)>(Wo, block);
  else if (V >= 8 && Wo >= 2)
    blocks_over_row<2>(Wo, block);
  else
    for (int64_t ow = 0; ow < Wo; ++ow) block.scalar(ow);
}

template <typename T>
struct MaxForwardRow {
  const T *r0, *r1;
  int64_t W, row_base;
  T* y;
  int64_t* idx;
  template <int V>
  void run(int64_t col) const {
    max_2x2_block<T, V>(r0, r1, W, row_base, col, y, idx);
  }
  void scalar(int64_t ow) const {
    const T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
    T best = a;
    int64_t at = 0;
    if ((b > best) | (b != b)) best = b, at = 1;
    if ((c > best) | (c != c)) best = c, at = W;
    if ((d > best) | (d != d)) best = d, at = W + 1;
    y[ow] = best;
    idx[ow] = row_base + 2 * ow + at;
  }
};

template <typename T>
struct MaxBackwardRow {
  const T* g;
  const int64_t* idx;
  int64_t W, row_base;
  T *r0, *r1;
  template <int V>
  void run(int64_t col) const {
    max_2x2_block_backward<T, V>(g, idx, W, row_base, col, r0, r1);
  }
  void scalar(int64_t ow) const {
    const int64_t a = idx[ow] - row_base - 2 * ow;
    const T v = g[ow];
    r0[2 * ow] = a == 0 ? v : T(0);
    r0[2 * ow + 1] = a == 1 ? v : T(0);
    r1[2 * ow] = a == W ? v : T(0);
    r1[2 * ow + 1] = a == W + 1 ? v : T(0);
  }
};

template <typename T>
struct AvgForwardRow {
  const T *r0, *r1;
  T* y;
  template <int V>
  void run(int64_t col) const {
    avg_2x2_block<T, V>(r0, r1, col, y);
  }
  void scalar(int64_t ow) const {
    y[ow] = ((((T(0) + r0[2 * ow]) + r0[2 * ow + 1]) + r1[2 * ow]) + r1[2 * ow + 1]) * (T(1) / (T(2) * T(2)));
  }
};

template <typename T>
struct AvgBackwardRow {
  const T* g;
  T *r0, *r1;
  template <int V>
  void run(int64_t col) const {
    avg_2x2_block_backward<T, V>(g, col, r0, r1);
  }
  void scalar(int64_t ow) const { r0[2 * ow] = r0[2 * ow + 1] = r1[2 * ow] = r1[2 * ow + 1] = g[ow] * T(0.25); }
};

// Threads for a pooling call, by its memory traffic. Each output is computed alone, so the split
// does not change results. Called in the num_threads clause itself, not in an `if` clause, so that
// the verdict (threads_for) comes before team() reads it.
inline int pool_threads(const Pool2dParams& p) {
  return threads_for_bytes(4.0 * double(p.planes() * (p.in_plane() + p.out_plane())));
}

// (Windows tile the plane: no dilation, and no ceil_mode window running past the input.)
inline bool is_2x2_stride2(const Pool2dParams& p) {
  return p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 && p.ph == 0 && p.pw == 0 && p.dh == 1 && p.dw == 1 &&
         2 * p.Ho <= p.H && 2 * p.Wo <= p.W;
}

// The average paths divide every window by 4.
inline bool is_avg_2x2_stride2(const Pool2dParams& p) {
  return is_2x2_stride2(p) && (p.divisor == 0 || p.divisor == 4);
}

template <typename T>
void max_forward_2x2s2(const Pool2dParams& p, const T* x, T* y, int64_t* idx) {
  const int64_t rows = p.planes() * p.Ho, W = p.W, Ho = p.Ho, Wo = p.Wo, in_plane = p.in_plane();
#pragma omp parallel for schedule(static) num_threads(team(pool_threads(p)))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t oh = r % Ho;
    const T* r0 = x + (r / Ho) * in_plane + 2 * oh * W;
    row_2x2(Wo, MaxForwardRow<T>{r0, r0 + W, W, 2 * oh * W, y + r * Wo, idx + r * Wo});
  }
}

template <typename T>
void avg_forward_2x2s2(const Pool2dParams& p, const T* x, T* y) {
  const int64_t rows = p.planes() * p.Ho, W = p.W, Ho = p.Ho, Wo = p.Wo, in_plane = p.in_plane();
#pragma omp parallel for schedule(static) num_threads(team(pool_threads(p)))
  for (int64_t r = 0; r < rows; ++r) {
    const T* r0 = x + (r / Ho) * in_plane + 2 * (r % Ho) * W;
    row_2x2(Wo, AvgForwardRow<T>{r0, r0 + W, y + r * Wo});
  }
}

// The rows of dx a plane's windows do not cover (odd H or W), zeroed.
template <typename T>
inline void zero_uncovered(T* dxp, int64_t H, int64_t W, int64_t Ho) {
  if (W & 1)
    for (int64_t ih = 0; ih < 2 * Ho; ++ih) dxp[ih * W + W - 1] = T(0);
  if (H & 1) std::memset(dxp + (H - 1) * W, 0, sizeof(T) * W);
}

template <typename T>
void max_backward_2x2s2(const Pool2dParams& p, const T* dy, const int64_t* idx, T* dx) {
  const int64_t planes = p.planes(), W = p.W, H = p.H, Ho = p.Ho, Wo = p.Wo;
#pragma omp parallel for schedule(static) num_threads(team(pool_threads(p)))
  for (int64_t pl = 0; pl < planes; ++pl) {
    T* dxp = dx + pl * H * W;
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const int64_t o = (pl * Ho + oh) * Wo;
      T* r0 = dxp + 2 * oh * W;
      row_2x2(Wo, MaxBackwardRow<T>{dy + o, idx + o, W, 2 * oh * W, r0, r0 + W});
    }
    zero_uncovered(dxp, H, W, Ho);
  }
}

template <typename T>
void avg_backward_2x2s2(const Pool2dParams& p, const T* dy, T* dx) {
  const int64_t planes = p.planes(), W = p.W, H = p.H, Ho = p.Ho, Wo = p.Wo;
#pragma omp parallel for schedule(static) num_threads(team(pool_threads(p)))
  for (int64_t pl = 0; pl < planes; ++pl) {
    T* dxp = dx + pl * H * W;
    for (int64_t oh = 0; oh < Ho; ++oh) {
      T* r0 = dxp + 2 * oh * W;
      row_2x2(Wo, AvgBackwardRow<T>{dy + (pl * Ho + oh) * Wo, r0, r0 + W});
    }
    zero_uncovered(dxp, H, W, Ho);
  }
}

#undef DK_POOL_2X2_VECTORS

}  // namespace dk::cpu::DK_POOL_NS
