// Pooling kernel bodies, compiled once per instruction set: pooling.cpp (portable),
// pooling_avx2.cpp and pooling_avx512.cpp include this file with DK_POOL_NS set to a distinct
// namespace, so each copy is auto-vectorised for its ISA and the copies never merge at link
// time. (Nothing may be defined outside that namespace for the same reason: an out-of-line
// std:: instantiation compiled with AVX-512 flags could be picked by the linker for the portable
// path; tools/check_isa_objects.sh checks the objects.) 2x2 / stride 2: pooling_2x2_impl.h.
//
// Generic windows: one OpenMP task per (plane, output row), vector blocks where the windows avoid
// the padding (max_block / sum_block), otherwise per-tap sweeps: the output row itself is the accumulator;
// for each window offset (i, j) we sweep the interior range of ow where the input column is in
// bounds, reading the input row with stride sw. With sw a compile-time 1 or 2 the sweep is a
// contiguous or de-interleaving load that the compiler vectorises; others take a generic stride.
// Windows visit (i, j) in row-major order, so ties and NaNs resolve exactly as the scalar
// definition (and PyTorch): a value replaces the max if it is greater or NaN.
#include "cpu/pooling/pooling_isa.h"  // first, in its own include block: DK_POOL_NS: this copy's namespace

#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "common/pool_params.h"
#include "cpu/common/parallel.h"
#include "cpu/pooling/pooling_2x2_impl.h"
#include "cpu/pooling/pooling_vec.h"

namespace dk::cpu::DK_POOL_NS {

inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// Output columns [lo, hi) whose input column ow*s + off lies in [0, W).
inline void interior(int64_t off, int64_t s, int64_t W, int64_t Wo, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = (W - 1 - off) < 0 ? 0 : (W - 1 - off) / s + 1;
  hi = imin(hi, Wo);
  if (lo > hi) lo = hi;
}

// ceil(a / b) and floor(a / b) for b > 0 and any sign of a.
inline int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Window columns j whose input column ow*sw + j*dw - pw is inside [0, W) for some output ow:
// the others lie in the padding for every window, so the sweeps skip them (this keeps a huge
// kernel_size with matching padding from looping over empty offsets).
inline void live_columns(const Pool2dParams& p, int64_t& j_lo, int64_t& j_hi) {
  j_lo = imax(0, ceil_div(p.pw - (p.Wo - 1) * p.sw, p.dw));
  j_hi = imin(p.kw, floor_div(p.W - 1 + p.pw, p.dw) + 1);
}

// The taps of a window starting at s0 (row or column) with k taps d apart that fall inside
// [0, n): first tap b, end e (exclusive, a multiple of d past b; e <= b when there are none).
inline void taps(int64_t s0, int64_t k, int64_t d, int64_t n, int64_t& b, int64_t& e) {
  const int64_t i_lo = s0 >= 0 ? 0 : ceil_div(-s0, d);
  const int64_t i_hi = imin(k, floor_div(n - 1 - s0, d) + 1);
  b = s0 + i_lo * d;
  e = s0 + imax(i_hi, i_lo) * d;
}

// I is the position type: int32 while a plane has fewer than 2^31 elements (as many SIMD lanes as
// float, half the bytes of int64), int64 beyond.
template <typename T, typename I, int S>
inline void max_sweep(const T* src, int64_t s_rt, int64_t lo, int64_t hi, T* y, I* idx, int64_t base) {
  const int64_t s = S > 0 ? S : s_rt;
  for (int64_t ow = lo; ow < hi; ++ow) {
    const T v = src[ow * s];
    const bool take = (v > y[ow]) | (v != v);
    y[ow] = take ? v : y[ow];
    idx[ow] = take ? I(base + ow * s) : idx[ow];
  }
}

template <typename T, int S>
inline void sum_sweep(const T* src, int64_t s_rt, int64_t lo, int64_t hi, T* y) {
  const int64_t s = S > 0 ? S : s_rt;
  for (int64_t ow = lo; ow < hi; ++ow) y[ow] += src[ow * s];
}

template <typename T, int S>
inline void spread_sweep(const T* g, int64_t s_rt, int64_t lo, int64_t hi, T* dst) {
  const int64_t s = S > 0 ? S : s_rt;
  for (int64_t ow = lo; ow < hi; ++ow) dst[ow * s] += g[ow];
}

// The output columns [lo, hi) that vector blocks of V handle: those whose windows lie wholly
// inside the row (ow*sw - pw >= 0 and ow*sw - pw + (kw - 1)*dw <= W - 1), when there are at least V
// of them and the stride is one load_strided handles well (<= 4); else an empty range.
inline void block_columns(const Pool2dParams& p, int64_t V, int64_t& lo, int64_t& hi) {
  const int64_t last = p.W - 1 - (p.kw - 1) * p.dw + p.pw;  // the largest ow*sw allowed
  lo = imin((p.pw + p.sw - 1) / p.sw, p.Wo);
  hi = last < 0 ? 0 : imin(last / p.sw + 1, p.Wo);
  if (hi - lo < V || p.sw > 4) lo = hi = 0;
}

// V output columns whose windows lie wholly inside the row (no column padding), all taps at once:
// the running max and its position are vectors (GCC/Clang vector extensions, so they stay in
// registers on every ISA) across the kh*kw taps, instead of one pass over the output row per
// tap. Taps in row-major order; a value replaces the max if greater or NaN, as max_sweep.
template <typename T, typename I, int S, int V>
inline void max_block(const T* xp, int64_t W, int64_t hb, int64_t he, int64_t dh, int64_t kw, int64_t dw, int64_t col0,
                      int64_t s_rt, T* y, I* pos) {
  typedef T TV __attribute__((vector_size(V * sizeof(T))));
  typedef I IV __attribute__((vector_size(V * sizeof(I))));
  const int64_t s = S > 0 ? S : s_rt;
  TV best;
  IV lane;
  for (int v = 0; v < V; ++v) {
    best[v] = -std::numeric_limits<T>::infinity();
    lane[v] = I(v * s);
  }
  IV at = lane + I(hb * W + col0);  // first valid position: kept if all are -inf
  for (int64_t ih = hb; ih < he; ih += dh) {
    for (int64_t j = 0; j < kw; ++j) {
      const int64_t base = ih * W + col0 + j * dw;
      const TV val = load_strided<TV, T, S, V>(xp + base, s);
      const auto take = (val > best) | (val != val);
      best = take ? val : best;
      at = __builtin_convertvector(take, IV) ? lane + I(base) : at;
    }
  }
  std::memcpy(y, &best, sizeof(TV));
  std::memcpy(pos, &at, sizeof(IV));
}

// One output column, scalar, taps clipped to the row (an edge column next to the padding).
template <typename T, typename I>
inline void max_column(const Pool2dParams& p, const T* xp, int64_t hb, int64_t he, int64_t ow, T* y, I* pos) {
  int64_t cb, ce;
  taps(ow * p.sw - p.pw, p.kw, p.dw, p.W, cb, ce);
  T best = -std::numeric_limits<T>::infinity();
  I at = I(hb * p.W + cb);  // first valid position: kept if all are -inf
  for (int64_t ih = hb; ih < he; ih += p.dh) {
    for (int64_t c = cb; c < ce; c += p.dw) {
      const T val = xp[ih * p.W + c];
      if ((val > best) | (val != val)) {
        best = val;
        at = I(ih * p.W + c);
      }
    }
  }
  y[ow] = best;
  pos[ow] = at;
}

// Generic windows, one output row per task, in chunks of kChunk columns whose positions are
// tracked as I (see max_sweep) and widened to the int64 indices once per chunk. Where the row
// has at least V columns whose windows lie wholly inside it, those go through max_block (the
// last block may overlap the one before: recomputing a column is harmless) and the edge columns
// through max_column; otherwise (narrow rows, strides > 4) one max_sweep per tap.
template <typename T, typename I>
void max_forward_rows(const Pool2dParams& p, const T* x, T* y, int64_t* idx, int64_t j_lo, int64_t j_hi) {
  constexpr int64_t kChunk = 512;
  constexpr int V = kVecBytes / sizeof(T);
  const int64_t rows = p.planes() * p.Ho;
  const int64_t sw = p.sw, pw = p.pw;
  int64_t in_lo, in_hi;
  block_columns(p, V, in_lo, in_hi);
#pragma omp parallel for schedule(static) num_threads(team(pool_threads(p)))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t plane = r / p.Ho, oh = r % p.Ho;
    const T* xp = x + plane * p.in_plane();
    T* yr = y + r * p.Wo;
    int64_t* ir = idx + r * p.Wo;
    int64_t hb, he;  // the window's rows inside the plane: hb, hb + dh, ... < he
    taps(oh * p.sh - p.ph, p.kh, p.dh, p.H, hb, he);
    const int64_t first_row = hb * p.W;
    I pos[kChunk];
    for (int64_t c0 = 0; c0 < p.Wo; c0 += kChunk) {
      const int64_t c1 = imin(c0 + kChunk, p.Wo);
      I* pc = pos - c0;  // pc[ow] for ow in [c0, c1)
      // [b_lo, b_hi): the columns of this chunk that blocks cover.
      int64_t b_lo = imax(in_lo, c0), b_hi = imin(in_hi, c1);
      if (b_hi - b_lo < V) b_lo = b_hi = c0;
      for (int64_t ow = b_lo; ow < b_hi; ow += V) {
        const int64_t o = imin(ow, b_hi - V);
        const int64_t col0 = o * sw - pw;
        if (sw == 1)
          max_block<T, I, 1, V>(xp, p.W, hb, he, p.dh, p.kw, p.dw, col0, 1, yr + o, pc + o);
        else if (sw == 2)
          max_block<T, I, 2, V>(xp, p.W, hb, he, p.dh, p.kw, p.dw, col0, 2, yr + o, pc + o);
        else
          max_block<T, I, 0, V>(xp, p.W, hb, he, p.dh, p.kw, p.dw, col0, sw, yr + o, pc + o);
      }
      if (b_lo < b_hi) {
        // Blocks cover the interior; the few edge columns go one at a time.
        for (int64_t ow = c0; ow < b_lo; ++ow) max_column(p, xp, hb, he, ow, yr, pc);
        for (int64_t ow = b_hi; ow < c1; ++ow) max_column(p, xp, hb, he, ow, yr, pc);
      } else {
        // No blocks: one sweep per tap along the whole chunk.
        for (int64_t ow = c0; ow < c1; ++ow) {
          int64_t cb, ce;
          taps(ow * sw - pw, p.kw, p.dw, p.W, cb, ce);
          yr[ow] = -std::numeric_limits<T>::infinity();
          pc[ow] = I(first_row + cb);  // first valid position: kept if all are -inf
        }
        for (int64_t ih = hb; ih < he; ih += p.dh) {
          for (int64_t j = j_lo; j < j_hi; ++j) {
            const int64_t off = j * p.dw - pw;
            int64_t lo, hi;
            interior(off, sw, p.W, p.Wo, lo, hi);
            lo = imax(lo, c0);
            hi = imin(hi, c1);
            if (lo >= hi) continue;
            const T* src = xp + ih * p.W + off;
            const int64_t base = ih * p.W + off;
            if (sw == 1)
              max_sweep<T, I, 1>(src, 1, lo, hi, yr, pc, base);
            else if (sw == 2)
              max_sweep<T, I, 2>(src, 2, lo, hi, yr, pc, base);
            else
              max_sweep<T, I, 0>(src, sw, lo, hi, yr, pc, base);
          }
        }
      }
      for (int64_t ow = c0; ow < c1; ++ow) ir[ow] = int64_t(pc[ow]);
    }
  }
}

template <typename T>
void max_forward(const Pool2dParams& p, const T* x, T* y, int64_t* idx) {
  if (is_2x2_stride2(p)) return max_forward_2x2s2(p, x, y, idx);
  int64_t j_lo, j_hi;
  live_columns(p, j_lo, j_hi);
  if (p.in_plane() < (int64_t(1) << 31)) return max_forward_rows<T, int32_t>(p, x, y, idx, j_lo, j_hi);
  return max_forward_rows<T, int64_t>(p, x, y, idx, j_lo, j_hi);
}

template <typename T>
void max_backward(const Pool2dParams& p, const T* dy, const int64_t* idx, T* dx) {
  if (is_2x2_stride2(p)) return max_backward_2x2s2(p, dy, idx, dx);
  const int64_t planes = p.planes();
#pragma omp parallel for schedule(static) num_threads(team(pool_threads(p)))
  for (int64_t pl = 0; pl < planes; ++pl) {
    T* dxp = dx + pl * p.in_plane();
    std::memset(dxp, 0, sizeof(T) * p.in_plane());
    const T* dyp = dy + pl * p.out_plane();
    const int64_t* ip = idx + pl * p.out_plane();
    const uint64_t n_in = uint64_t(p.in_plane());
    // The bounds check keeps an index array altered behind the ctx's back (the ctx fingerprints
    // indices the caller can reach; see python/deepkern/_saved.py) from writing outside the plane.
    for (int64_t o = 0; o < p.out_plane(); ++o)
      if (uint64_t(ip[o]) < n_in) dxp[ip[o]] += dyp[o];
  }
}

// The sum over a window wholly inside the row for V output columns at once, taps in row-major
// order (the same order, so the same rounding, as the per-tap sweeps of avg_forward).
template <typename T, int S, int V>
inline void sum_block(const T* xp, int64_t W, int64_t hb, int64_t he, int64_t kw, int64_t col0, int64_t s_rt,
                      T inv_area, T* y) {
  typedef T TV __attribute__((vector_size(V * sizeof(T))));
  const int64_t s = S > 0 ? S : s_rt;
  TV acc = {};
  for (int64_t ih = hb; ih < he; ++ih)
    for (int64_t j = 0; j < kw; ++j) acc += load_strided<TV, T, S, V>(xp + ih * W + col0 + j, s);
  acc *= inv_area;
  std::memcpy(y, &acc, sizeof(TV));
}

// An avg-pool window's extent along one axis that its divisor counts (see Pool2dParams): the
// window [s0, s0 + k) clipped to the padded input [-pad, n + pad) or to the input [0, n).
inline int64_t counted(int64_t s0, int64_t k, int64_t n, int64_t pad, bool count_pad) {
  return count_pad ? imin(s0 + k, n + pad) - s0 : imin(s0 + k, n) - imax(s0, 0);
}

// Whether every window has the same divisor; inv is then 1/divisor. Otherwise (ceil_mode windows
// past the padded input, count_include_pad=False next to padding) each output divides its own sum.
template <typename T>
inline bool avg_uniform(const Pool2dParams& p, T& inv) {
  bool same = true;
  if (p.divisor > 0) {
    inv = T(1) / T(p.divisor);
    return true;
  }
  if (p.count_pad)
    same = (p.Ho - 1) * p.sh + p.kh <= p.H + 2 * p.ph && (p.Wo - 1) * p.sw + p.kw <= p.W + 2 * p.pw;
  else
    same = p.ph == 0 && p.pw == 0 && (p.Ho - 1) * p.sh + p.kh <= p.H && (p.Wo - 1) * p.sw + p.kw <= p.W;
  inv = same ? T(1) / (T(p.kh) * T(p.kw)) : T(1);  // kh*kw could overflow int64
  return same;
}

// The divisor of output (oh, ow) when they are not all the same.
template <typename T>
inline T avg_divisor(const Pool2dParams& p, int64_t oh, int64_t ow) {
  return T(counted(oh * p.sh - p.ph, p.kh, p.H, p.ph, p.count_pad)) *
         T(counted(ow * p.sw - p.pw, p.kw, p.W, p.pw, p.count_pad));
}

template <typename T>
void avg_forward(const Pool2dParams& p, const T* x, T* y) {
  if (is_avg_2x2_stride2(p)) return avg_forward_2x2s2(p, x, y);
  int64_t j_lo, j_hi;
  live_columns(p, j_lo, j_hi);
  constexpr int V = kVecBytes / sizeof(T);
  const int64_t rows = p.planes() * p.Ho;
  T inv_area;  // 1 when the divisors differ: the sums are then divided per output below
  const bool uniform = avg_uniform(p, inv_area);
  const int64_t sw = p.sw, pw = p.pw;
  int64_t b_lo, b_hi;  // as max_forward_rows: vector blocks over [b_lo, b_hi)
  block_columns(p, V, b_lo, b_hi);
#pragma omp parallel for schedule(static) num_threads(team(pool_threads(p)))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t plane = r / p.Ho, oh = r % p.Ho;
    const T* xp = x + plane * p.in_plane();
    T* yr = y + r * p.Wo;
    const int64_t h0 = oh * p.sh - p.ph;
    const int64_t hb = imax(h0, 0), he = imin(h0 + p.kh, p.H);
    for (int64_t ow = b_lo; ow < b_hi; ow += V) {
      const int64_t o = imin(ow, b_hi - V);
      const int64_t col0 = o * sw - pw;
      if (sw == 1)
        sum_block<T, 1, V>(xp, p.W, hb, he, p.kw, col0, 1, inv_area, yr + o);
      else if (sw == 2)
        sum_block<T, 2, V>(xp, p.W, hb, he, p.kw, col0, 2, inv_area, yr + o);
      else
        sum_block<T, 0, V>(xp, p.W, hb, he, p.kw, col0, sw, inv_area, yr + o);
    }
    // The other columns (all of them without blocks): one sweep per tap.
    for (int part = 0; part < 2; ++part) {
      const int64_t r0 = part == 0 ? 0 : b_hi, r1 = part == 0 ? b_lo : p.Wo;
      if (r0 >= r1) continue;
      for (int64_t ow = r0; ow < r1; ++ow) yr[ow] = T(0);
      for (int64_t ih = hb; ih < he; ++ih) {
        for (int64_t j = j_lo; j < j_hi; ++j) {
          const int64_t off = j - p.pw;
          int64_t lo, hi;
          interior(off, p.sw, p.W, p.Wo, lo, hi);
          lo = imax(lo, r0);
          hi = imin(hi, r1);
          if (lo >= hi) continue;
          const T* src = xp + ih * p.W + off;
          if (p.sw == 1)
            sum_sweep<T, 1>(src, 1, lo, hi, yr);
          else if (p.sw == 2)
            sum_sweep<T, 2>(src, 2, lo, hi, yr);
          else
            sum_sweep<T, 0>(src, p.sw, lo, hi, yr);
        }
      }
      for (int64_t ow = r0; ow < r1; ++ow) yr[ow] *= inv_area;
    }
    if (!uniform)
      for (int64_t ow = 0; ow < p.Wo; ++ow) yr[ow] /= avg_divisor<T>(p, oh, ow);
  }
}

template <typename T>
void avg_backward(const Pool2dParams& p, const T* dy, T* dx) {
  if (is_avg_2x2_stride2(p)) return avg_backward_2x2s2(p, dy, dx);
  int64_t j_lo, j_hi;
  live_columns(p, j_lo, j_hi);
  const int64_t planes = p.planes();
  T inv_area;
  const bool uniform = avg_uniform(p, inv_area);
#pragma omp parallel for schedule(static) num_threads(team(pool_threads(p)))
  for (int64_t pl = 0; pl < planes; ++pl) {
    T* dxp = dx + pl * p.in_plane();
    std::memset(dxp, 0, sizeof(T) * p.in_plane());
    const T* dyp = dy + pl * p.out_plane();
    // (The tap loop below mirrors the forward's: the same interior ranges, a scatter for its gather.)
    T g[256];  // one output row's scaled gradient, in chunks of 256 columns
    for (int64_t oh = 0; oh < p.Ho; ++oh) {
      const int64_t h0 = oh * p.sh - p.ph;
      const int64_t hb = imax(h0, 0), he = imin(h0 + p.kh, p.H);
      for (int64_t c0 = 0; c0 < p.Wo; c0 += 256) {
        const int64_t c1 = imin(c0 + 256, p.Wo);
        if (uniform)
          for (int64_t ow = c0; ow < c1; ++ow) g[ow - c0] = dyp[oh * p.Wo + ow] * inv_area;
        else
          for (int64_t ow = c0; ow < c1; ++ow) g[ow - c0] = dyp[oh * p.Wo + ow] / avg_divisor<T>(p, oh, ow);
        for (int64_t ih = hb; ih < he; ++ih) {
          for (int64_t j = j_lo; j < j_hi; ++j) {
            const int64_t off = j - p.pw;
            int64_t lo, hi;
            interior(off, p.sw, p.W, p.Wo, lo, hi);
            lo = imax(lo, c0);
            hi = imin(hi, c1);
            if (lo >= hi) continue;
            T* dst = dxp + ih * p.W + off;
            if (p.sw == 1)
              spread_sweep<T, 1>(g - c0, 1, lo, hi, dst);
            else if (p.sw == 2)
              spread_sweep<T, 2>(g - c0, 2, lo, hi, dst);
            else
              spread_sweep<T, 0>(g - c0, p.sw, lo, hi, dst);
          }
        }
      }
    }
  }
}

}  // namespace dk::cpu::DK_POOL_NS
