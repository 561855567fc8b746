// AVX-512 row copies for the unfolded shifted-GEMM buffer (see conv2d_unfold.h). Compiled with
// AVX-512 flags; only called when best_isa() == Avx512.
#include <immintrin.h>

#include "cpu/conv2d_unfold.h"

namespace dk::cpu {

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
    if (i + L <= room) store(d + i, v);
    else mstore(d + i, m, v);
  }
}

inline void copy_row(float* d, const float* s, int64_t n, int64_t room) {
  copy_row<float, __m512, 16>(
      d, s, n, room, [](const float* p) { return _mm512_loadu_ps(p); }, [](float* p, __m512 v) { _mm512_storeu_ps(p, v); },
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
void unfold_rows_avx512(const T* src, int64_t ld_src, int64_t rows, T* dst, int64_t ld_dst, int64_t plane, int64_t kw,
                        const int64_t* lo, const int64_t* hi, const int64_t* off) {
  const int64_t end = rows * ld_dst;
  for (int64_t j = 0; j < kw; ++j) {
    T* d = dst + j * plane + lo[j];
    const T* s = src + off[j] + lo[j];
    const int64_t n = hi[j] - lo[j];
    for (int64_t r = 0; r < rows; ++r) copy_row(d + r * ld_dst, s + r * ld_src, n, end - (r * ld_dst + lo[j]));
  }
}

template void unfold_rows_avx512<float>(const float*, int64_t, int64_t, float*, int64_t, int64_t, int64_t,
                                        const int64_t*, const int64_t*, const int64_t*);
template void unfold_rows_avx512<double>(const double*, int64_t, int64_t, double*, int64_t, int64_t, int64_t,
                                         const int64_t*, const int64_t*, const int64_t*);

}  // namespace dk::cpu
