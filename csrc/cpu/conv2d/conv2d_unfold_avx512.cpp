// AVX-512 row copies for the unfolded shifted-GEMM buffer (see conv2d_unfold.h). Compiled with
// AVX-512 flags; only called when best_isa() == Avx512.
#include <immintrin.h>

#include <cstdint>

#include "cpu/common/isa.h"
#include "cpu/conv2d/conv2d_unfold.h"

namespace dk::cpu::DK_ISA_NAMESPACE::conv2d {

namespace {

// d[0, n) = s[0, n). The tail is loaded masked (zeros past n) and, where `room` >= the vector
// width past it, stored whole: the zeros then land on the row's padding columns and on later
// rows of the same plane, which are rewritten afterwards (rows go in increasing order). AMD's
// masked stores cost several times a plain one, and this copy runs once per row and tap column.
template <typename T, typename V, int L, typename Load, typename Store, typename MLoad, typename MStore>
inline void copy_row(T* d, const T* s, int64_t n, int64_t room, Load load, Store store, MLoad mload, MStore mstore) {
  int64_t i = 0;
  for (; i + L <= n; i += L) store(d + i, load(s + i));
  if (i < n) {
    const unsigned m = (1u << (n - i)) - 1u;
    const V v = mload(m, s + i);
    if (i + L <= room)
      store(d + i, v);
    else
      mstore(d + i, m, v);
  }
}

inline void copy_row(float* d, const float* s, int64_t n, int64_t room) {
  copy_row<float, __m512, 16>(
      d, s, n, room, [](const float* p) { return _mm512_loadu_ps(p); },
      [](float* p, __m512 v) { _mm512_storeu_ps(p, v); },
      [](unsigned m, const float* p) { return _mm512_maskz_loadu_ps(__mmask16(m), p); },
      [](float* p, unsigned m, __m512 v) { _mm512_mask_storeu_ps(p, __mmask16(m), v); });
}

inline void copy_row(double* d, const double* s, int64_t n, int64_t room) {
  copy_row<double, __m512d, 8>(
      d, s, n, room, [](const double* p) { return _mm512_loadu_pd(p); },
      [](double* p, __m512d v) { _mm512_storeu_pd(p, v); },
      [](unsigned m, const double* p) { return _mm512_maskz_loadu_pd(__mmask8(m), p); },
      [](double* p, unsigned m, __m512d v) { _mm512_mask_storeu_pd(p, __mmask8(m), v); });
}

}  // namespace

// Plane by plane, rows in increasing order, so that a whole-vector tail store only ever spills
// zeros onto rows not yet written; nothing is written past the last row (other threads' planes).
template <typename T>
void unfold_rows(const T* src, int64_t ld_src, int64_t rows, T* dst, int64_t ld_dst, int64_t plane, int64_t kw,
                 const int64_t* lo, const int64_t* hi, const int64_t* off) {
  const int64_t end = rows * ld_dst;
  for (int64_t j = 0; j < kw; ++j) {
    T* d = dst + j * plane + lo[j];
    const T* s = src + off[j] + lo[j];
    const int64_t n = hi[j] - lo[j];
    for (int64_t r = 0; r < rows; ++r) copy_row(d + r * ld_dst, s + r * ld_src, n, end - (r * ld_dst + lo[j]));
  }
}

namespace {

// Lane helpers for the narrow path: L lanes per vector, a padded row in two vectors.
struct NarrowF32 {
  using T = float;
  using V = __m512;
  using I = __m512i;
  static constexpr int L = 16;
  static V mload(uint32_t m, const T* p) { return _mm512_maskz_loadu_ps(__mmask16(m), p); }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static void mstore(T* p, uint32_t m, V v) { _mm512_mask_storeu_ps(p, __mmask16(m), v); }
  static I shift_index(int64_t s) {
    return _mm512_add_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                            _mm512_set1_epi32(int(s)));
  }
  static V cut(V a, I idx, V b) { return _mm512_permutex2var_ps(a, idx, b); }
  static V zero() { return _mm512_setzero_ps(); }
  // lanes 2i + parity of the pair (a, b)
  static I deal_index(int parity) {
    return _mm512_add_epi32(_mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0),
                            _mm512_set1_epi32(parity));
  }
};
struct NarrowF64 {
  using T = double;
  using V = __m512d;
  using I = __m512i;
  static constexpr int L = 8;
  static V mload(uint32_t m, const T* p) { return _mm512_maskz_loadu_pd(__mmask8(m), p); }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static void mstore(T* p, uint32_t m, V v) { _mm512_mask_storeu_pd(p, __mmask8(m), v); }
  static I shift_index(int64_t s) {
    return _mm512_add_epi64(_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi64(s));
  }
  static V cut(V a, I idx, V b) { return _mm512_permutex2var_pd(a, idx, b); }
  static V zero() { return _mm512_setzero_pd(); }
  static I deal_index(int parity) {
    return _mm512_add_epi64(_mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), _mm512_set1_epi64(parity));
  }
};

// Lanes [lo, hi) of the vector that starts at lane `first` of a row.
inline uint32_t lane_mask(int64_t first, int64_t lo, int64_t hi, int L) {
  uint32_t m = 0;
  for (int i = 0; i < L; ++i)
    if (first + i >= lo && first + i < hi) m |= 1u << i;
  return m;
}

template <typename N>
bool narrow(const typename N::T* src, int64_t ld_src, int64_t rows, typename N::T* dst, int64_t ld_dst, int64_t plane,
            int64_t kw, int64_t dw, int64_t pw, int64_t W) {
  using T = typename N::T;
  using V = typename N::V;
  constexpr int L = N::L;
  const int64_t wo = ld_dst;
  if (W + 2 * pw > 2 * L || kw > 64) return false;
  // the padded row xpad[t] = x[t - pw] for t in [pw, pw + W), 0 elsewhere, in lanes t of (v0, v1)
  const uint32_t m0 = lane_mask(0, pw, pw + W, L), m1 = lane_mask(L, pw, pw + W, L);
  typename N::I idx[64];
  for (int64_t j = 0; j < kw; ++j) idx[j] = N::shift_index(j * dw);
  const int64_t end = rows * wo;
  for (int64_t r = 0; r < rows; ++r) {
    // masked-out lanes are neither read nor faulted on, so the row may start before x's first value
    const uintptr_t row0 = reinterpret_cast<uintptr_t>(src + r * ld_src) - uintptr_t(pw) * sizeof(T);
    const V v0 = N::mload(m0, reinterpret_cast<const T*>(row0)),
            v1 = N::mload(m1, reinterpret_cast<const T*>(row0) + L);
    const int64_t room = end - r * wo;  // values up to the plane's last row may be written
    for (int64_t j = 0; j < kw; ++j) {
      T* d = dst + j * plane + r * wo;
      const V o0 = N::cut(v0, idx[j], v1);
      if (room >= L)
        N::store(d, o0);
      else
        N::mstore(d, (1u << room) - 1u, o0);
      if (wo > L) {
        const V o1 = N::cut(v1, idx[j], N::zero());
        if (room >= 2 * L)
          N::store(d + L, o1);
        else
          N::mstore(d + L, (1u << (room - L)) - 1u, o1);
      }
    }
  }
  return true;
}

// Column stride 2: the padded row in four vectors, dealt into its even lanes (e0, e1) and odd lanes
// (o0, o1); tap column j's window starts at lane (j*dw) / 2 of the half of parity (j*dw) % 2.
template <typename N>
bool narrow2(const typename N::T* src, int64_t ld_src, int64_t rows, typename N::T* dst, int64_t ld_dst, int64_t plane,
             int64_t kw, int64_t dw, int64_t pw, int64_t W) {
  using T = typename N::T;
  using V = typename N::V;
  constexpr int L = N::L;
  const int64_t wo = ld_dst;
  if (W + 2 * pw > 4 * L || wo > 2 * L || kw > 64 || (kw - 1) * dw / 2 >= L) return false;
  uint32_t m[4];
  for (int v = 0; v < 4; ++v) m[v] = lane_mask(v * L, pw, pw + W, L);
  typename N::I idx[64];
  for (int64_t j = 0; j < kw; ++j) idx[j] = N::shift_index(j * dw / 2);
  const typename N::I even = N::deal_index(0), odd = N::deal_index(1);
  const int64_t end = rows * wo;
  for (int64_t r = 0; r < rows; ++r) {
    const T* row0 =
        reinterpret_cast<const T*>(reinterpret_cast<uintptr_t>(src + r * ld_src) - uintptr_t(pw) * sizeof(T));
    const V v0 = N::mload(m[0], row0), v1 = N::mload(m[1], row0 + L), v2 = N::mload(m[2], row0 + 2 * L),
            v3 = N::mload(m[3], row0 + 3 * L);
    const V e0 = N::cut(v0, even, v1), e1 = N::cut(v2, even, v3), o0 = N::cut(v0, odd, v1), o1 = N::cut(v2, odd, v3);
    const int64_t room = end - r * wo;
    for (int64_t j = 0; j < kw; ++j) {
      const bool par = (j * dw) & 1;
      const V h0 = par ? o0 : e0, h1 = par ? o1 : e1;
      T* d = dst + j * plane + r * wo;
      const V w0 = N::cut(h0, idx[j], h1);
      if (room >= L)
        N::store(d, w0);
      else
        N::mstore(d, (1u << room) - 1u, w0);
      if (wo > L) {
        const V w1 = N::cut(h1, idx[j], N::zero());
        if (room >= 2 * L)
          N::store(d + L, w1);
        else
          N::mstore(d + L, (1u << (room - L)) - 1u, w1);
      }
    }
  }
  return true;
}

}  // namespace

template <>
bool unfold_rows_narrow2<float>(const float* src, int64_t ld_src, int64_t rows, float* dst, int64_t ld_dst,
                                int64_t plane, int64_t kw, int64_t dw, int64_t pw, int64_t W) {
  return narrow2<NarrowF32>(src, ld_src, rows, dst, ld_dst, plane, kw, dw, pw, W);
}
template <>
bool unfold_rows_narrow2<double>(const double* src, int64_t ld_src, int64_t rows, double* dst, int64_t ld_dst,
                                 int64_t plane, int64_t kw, int64_t dw, int64_t pw, int64_t W) {
  return narrow2<NarrowF64>(src, ld_src, rows, dst, ld_dst, plane, kw, dw, pw, W);
}

template <>
bool unfold_rows_narrow<float>(const float* src, int64_t ld_src, int64_t rows, float* dst, int64_t ld_dst,
                               int64_t plane, int64_t kw, int64_t dw, int64_t pw, int64_t W) {
  return narrow<NarrowF32>(src, ld_src, rows, dst, ld_dst, plane, kw, dw, pw, W);
}
template <>
bool unfold_rows_narrow<double>(const double* src, int64_t ld_src, int64_t rows, double* dst, int64_t ld_dst,
                                int64_t plane, int64_t kw, int64_t dw, int64_t pw, int64_t W) {
  return narrow<NarrowF64>(src, ld_src, rows, dst, ld_dst, plane, kw, dw, pw, W);
}

template void unfold_rows<float>(const float*, int64_t, int64_t, float*, int64_t, int64_t, int64_t, const int64_t*,
                                 const int64_t*, const int64_t*);
template void unfold_rows<double>(const double*, int64_t, int64_t, double*, int64_t, int64_t, int64_t, const int64_t*,
                                  const int64_t*, const int64_t*);

}  // namespace dk::cpu::DK_ISA_NAMESPACE::conv2d
