#pragma once
// The backward of the depthwise 3x3 stride-2 phase kernels (conv2d_depthwise_s2_impl.h: geometry,
// split rows, the scheme): dx gathered per row and column phase, dw from the split input; one task
// per plane, its dw sums in its own slot (so the sums do not depend on the team).
#include "cpu/conv2d/conv2d_depthwise_common.h"

namespace dk::cpu::DK_DW_NS {

// dy plane (Ho x Wo) -> dp: row oh at dp + (oh + 1) Ld + 1; zero rows above and below, zero columns
// before and after (set once by the caller), so the phases' shifted reads need no bounds.
template <typename T, int V>
void s2_copy_dy(const Conv2dParams& p, const S2Geom& g, const T* dy, T* dp, T* tmp) {
  typedef T TV __attribute__((vector_size(V * sizeof(T))));
  for (int64_t oh = 0; oh < p.Ho; ++oh) {
    const T* src = dy + oh * p.Wo;
    if (oh * p.Wo + g.nv * V > p.out_plane()) {
      std::memcpy(tmp, src, sizeof(T) * size_t(p.Wo));
      src = tmp;
    }
    T* dst = dp + (oh + 1) * g.Ld + 1;
    for (int64_t k = 0; k < g.nv; ++k) {
      TV v;
      std::memcpy(&v, src + k * V, sizeof v);
      v = keep_first<T, V>(v, p.Wo - k * V);
      std::memcpy(dst + k * V, &v, sizeof v);
    }
  }
}

// One phase of V input columns: column phase B (padded column parity) at dy column offset s, from the
// kernel rows of row phase A: A = 1: row i = 1 (dy row d0); A = 0: i = 0 (d0), i = 2 (d1 = the row above).
// B = 1: tap j = 1 at dy column u + s; B = 0: j = 0 at u + s, j = 2 at u + s - 1. In (i, j) order.
template <typename T, int V, int A, int B, typename TV>
inline TV s2_dx_phase(const T* d0, const T* d1, const TV* wk, int64_t at) {
  TV acc = TV{}, v;
  for (int r = 0; r < (A == 0 ? 2 : 1); ++r) {
    const int i = A == 1 ? 1 : 2 * r;
    const T* d = (r == 0 ? d0 : d1) + at;
    if (B == 1) {
      std::memcpy(&v, d, sizeof v);
      acc += wk[i * 3 + 1] * v;
    } else {
      std::memcpy(&v, d, sizeof v);
      acc += wk[i * 3] * v;
      std::memcpy(&v, d - 1, sizeof v);
      acc += wk[i * 3 + 2] * v;
    }
  }
  return acc;
}

// dx row ih (padded row of phase A, dy rows d0 / d1) for odd (PO = 1) or even pw: even columns 2u are
// padded phase PO at dy offset sb = pw / 2, odd columns phase 1 - PO at sb + PO. Whole 2V-column
// stores may run into the next rows of the plane (rewritten after); not past the plane.
template <typename T, int V, int A, int PO, typename TV>
inline void s2_dx_row(const Conv2dParams& p, const S2Geom& g, const T* d0, const T* d1, const TV* wk, int64_t ih,
                      T* dx) {
  const int64_t sb = p.pw / 2, room = p.in_plane() - ih * p.W;
  T* out = dx + ih * p.W;
  for (int64_t b = 0; b < g.nx; ++b) {
    const int64_t u0 = b * V;
    const TV e = s2_dx_phase<T, V, A, PO, TV>(d0, d1, wk, u0 + sb);
    const TV o = s2_dx_phase<T, V, A, 1 - PO, TV>(d0, d1, wk, u0 + sb + PO);
    store_zipped<T, V>(out + 2 * u0, e, o, room - 2 * u0, p.W - 2 * u0);
  }
}

template <typename T, int V>
void s2_dx_plane(const Conv2dParams& p, const S2Geom& g, const T* dp, const T* w, T* dx) {
  typedef T TV __attribute__((vector_size(V * sizeof(T))));
  TV wk[9];  // the weights as vectors, here: dx's stores could alias w as far as the compiler knows
  for (int t = 0; t < 9; ++t) wk[t] = TV{} + w[t];
  for (int64_t ih = 0; ih < p.H; ++ih) {
    const int64_t r = ih + p.ph, t = r / 2;
    const T* d0 = dp + (t + 1) * g.Ld + 1;  // dy row t (row Ho and row -1 are zeros)
    const T* d1 = d0 - g.Ld;
    if (r % 2 == 0 && p.pw % 2)
      s2_dx_row<T, V, 0, 1>(p, g, d0, d1, wk, ih, dx);
    else if (r % 2 == 0)
      s2_dx_row<T, V, 0, 0>(p, g, d0, d1, wk, ih, dx);
    else if (p.pw % 2)
      s2_dx_row<T, V, 1, 1>(p, g, d0, d1, wk, ih, dx);
    else
      s2_dx_row<T, V, 1, 0>(p, g, d0, d1, wk, ih, dx);
  }
}

// The plane's dw sums (9 taps, tap t = 3i + j) into s: each dy vector times E[u], O[u], E[u + 1] of
// the three rows it reads, lanes summed in double at the end.
template <typename T, int V>
void s2_dw_plane(const Conv2dParams& p, const S2Geom& g, const T* xb, const T* dp, double* s) {
  typedef T TV __attribute__((vector_size(V * sizeof(T))));
  TV acc[9];
  for (int t = 0; t < 9; ++t) acc[t] = TV{};
  for (int64_t oh = 0; oh < p.Ho; ++oh) {
    const T* gr = dp + (oh + 1) * g.Ld + 1;
    for (int64_t k = 0; k < g.nv; ++k) {
      TV gv, v;
      std::memcpy(&gv, gr + k * V, sizeof gv);
      for (int i = 0; i < 3; ++i) {
        const T* e = xb + 2 * (2 * oh + i) * g.Lp + k * V;
        std::memcpy(&v, e, sizeof v);
        acc[3 * i] += gv * v;
        std::memcpy(&v, e + g.Lp, sizeof v);
        acc[3 * i + 1] += gv * v;
        std::memcpy(&v, e + 1, sizeof v);
        acc[3 * i + 2] += gv * v;
      }
    }
  }
  for (int t = 0; t < 9; ++t) {
    double sum = 0.0;
    for (int l = 0; l < V; ++l) sum += double(acc[t][l]);
    s[t] = sum;
  }
}

// dx and / or dw (either may be null) for K = C. Planes in memory order (x, dy and dx stream on), each
// plane's dw sums into its own slot of `sums`; a second pass adds the samples in order per channel.
template <typename T>
void s2_backward(const Conv2dParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw) {
  constexpr int V = kDwVecBytes / sizeof(T);
  const S2Geom g = s2_geom<V>(p);
  const int64_t planes = p.N * p.C;
  double* sums = dw ? new double[size_t(9 * planes)] : nullptr;  // new[]: no std:: template in an ISA copy
#pragma omp parallel num_threads(team(dw_parallel(p) ? num_threads() : 1))
  {
    // zeroed once: the padding stays zero
    T* xb = dw ? new T[size_t(g.rows * 2 * g.Lp)]() : nullptr;
    T* dp = new T[size_t((p.Ho + 2) * g.Ld + V)]();
    T* tmp = new T[size_t(2 * V * (g.np + g.nv))]();
#pragma omp for schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* wk = w + 9 * (pl % p.C);
      const T* xp = x + pl * p.in_plane();
      const T* dyp = dy + pl * p.out_plane();
      s2_copy_dy<T, V>(p, g, dyp, dp, tmp);
      if (dx) {
        if (finite_taps(wk, 9))
          s2_dx_plane<T, V>(p, g, dp, wk, dx + pl * p.in_plane());
        else
          plane_exact<T>(p, xp, wk, dyp, dx + pl * p.in_plane(), nullptr);
      }
      if (!dw) continue;
      double* s = sums + 9 * pl;
      s2_split_plane<T, V>(p, g, xp, xb, tmp);
      s2_dw_plane<T, V>(p, g, xb, dp, s);
      bool ok = true;
      for (int t = 0; t < 9; ++t) ok = ok && __builtin_isfinite(s[t]);
      if (!ok) plane_exact<T>(p, xp, wk, dyp, nullptr, s);
    }
    delete[] tmp;
    delete[] dp;
    delete[] xb;
  }
  if (!dw) return;
  for (int64_t c = 0; c < p.C; ++c)
    for (int t = 0; t < 9; ++t) {
      double acc = 0.0;
      for (int64_t n = 0; n < p.N; ++n) acc += sums[9 * (n * p.C + c) + t];
      dw[9 * c + t] = T(acc);
    }
  delete[] sums;
}

}  // namespace dk::cpu::DK_DW_NS
