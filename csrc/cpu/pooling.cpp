#include "cpu/pooling.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/parallel.h"

namespace dk::cpu {

namespace {

// Clamped window bounds along one axis for output position o.
struct Span {
  int64_t begin, end;
};
inline Span window(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t size) {
  int64_t b = o * stride - pad;
  int64_t e = b + k;
  return {std::max<int64_t>(b, 0), std::min<int64_t>(e, size)};
}

}  // namespace

template <typename T>
void max_pool2d_forward(const Pool2dParams& p, const T* x, T* y, int64_t* idx) {
  const int64_t rows = p.planes() * p.Ho;
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t plane = r / p.Ho, oh = r % p.Ho;
    const T* xp = x + plane * p.in_plane();
    T* yrow = y + plane * p.out_plane() + oh * p.Wo;
    int64_t* irow = idx + plane * p.out_plane() + oh * p.Wo;
    const Span hs = window(oh, p.sh, p.ph, p.kh, p.H);
    for (int64_t ow = 0; ow < p.Wo; ++ow) {
      const Span ws = window(ow, p.sw, p.pw, p.kw, p.W);
      T best = -std::numeric_limits<T>::infinity();
      int64_t best_at = hs.begin * p.W + ws.begin;
      for (int64_t ih = hs.begin; ih < hs.end; ++ih) {
        const T* xr = xp + ih * p.W;
        for (int64_t iw = ws.begin; iw < ws.end; ++iw) {
          const T v = xr[iw];
          if (v > best || std::isnan(v)) {
            best = v;
            best_at = ih * p.W + iw;
            if (std::isnan(v)) goto done;  // NaN is final: nothing compares greater
          }
        }
      }
    done:
      yrow[ow] = best;
      irow[ow] = best_at;
    }
  }
}

template <typename T>
void max_pool2d_backward(const Pool2dParams& p, const T* dy, const int64_t* idx, T* dx) {
  const int64_t planes = p.planes();
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int64_t pl = 0; pl < planes; ++pl) {
    T* dxp = dx + pl * p.in_plane();
    std::memset(dxp, 0, sizeof(T) * p.in_plane());
    const T* dyp = dy + pl * p.out_plane();
    const int64_t* ip = idx + pl * p.out_plane();
    for (int64_t o = 0; o < p.out_plane(); ++o) dxp[ip[o]] += dyp[o];
  }
}

template <typename T>
void avg_pool2d_forward(const Pool2dParams& p, const T* x, T* y) {
  const int64_t rows = p.planes() * p.Ho;
  const T inv_area = T(1) / T(p.kh * p.kw);
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t plane = r / p.Ho, oh = r % p.Ho;
    const T* xp = x + plane * p.in_plane();
    T* yrow = y + plane * p.out_plane() + oh * p.Wo;
    const Span hs = window(oh, p.sh, p.ph, p.kh, p.H);
    for (int64_t ow = 0; ow < p.Wo; ++ow) {
      const Span ws = window(ow, p.sw, p.pw, p.kw, p.W);
      T sum = 0;
      for (int64_t ih = hs.begin; ih < hs.end; ++ih) {
        const T* xr = xp + ih * p.W;
        for (int64_t iw = ws.begin; iw < ws.end; ++iw) sum += xr[iw];
      }
      yrow[ow] = sum * inv_area;
    }
  }
}

template <typename T>
void avg_pool2d_backward(const Pool2dParams& p, const T* dy, T* dx) {
  const int64_t planes = p.planes();
  const T inv_area = T(1) / T(p.kh * p.kw);
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int64_t pl = 0; pl < planes; ++pl) {
    T* dxp = dx + pl * p.in_plane();
    std::memset(dxp, 0, sizeof(T) * p.in_plane());
    const T* dyp = dy + pl * p.out_plane();
    for (int64_t oh = 0; oh < p.Ho; ++oh) {
      const Span hs = window(oh, p.sh, p.ph, p.kh, p.H);
      for (int64_t ow = 0; ow < p.Wo; ++ow) {
        const Span ws = window(ow, p.sw, p.pw, p.kw, p.W);
        const T g = dyp[oh * p.Wo + ow] * inv_area;
        for (int64_t ih = hs.begin; ih < hs.end; ++ih)
          for (int64_t iw = ws.begin; iw < ws.end; ++iw) dxp[ih * p.W + iw] += g;
      }
    }
  }
}

#define DK_INSTANTIATE_POOLING(T)                                                          \
  template void max_pool2d_forward<T>(const Pool2dParams&, const T*, T*, int64_t*);        \
  template void max_pool2d_backward<T>(const Pool2dParams&, const T*, const int64_t*, T*); \
  template void avg_pool2d_forward<T>(const Pool2dParams&, const T*, T*);                  \
  template void avg_pool2d_backward<T>(const Pool2dParams&, const T*, T*);
DK_INSTANTIATE_POOLING(float)
DK_INSTANTIATE_POOLING(double)
#undef DK_INSTANTIATE_POOLING

}  // namespace dk::cpu
