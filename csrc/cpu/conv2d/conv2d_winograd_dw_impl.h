#pragma once
// Winograd weight gradient of a stride-1 3x3 or 5x5 convolution (conv2d_winograd.h), compiled per
// ISA with the forward (conv2d_winograd_impl.h). dw[k,c] = sum over n and output positions of
// dy[n,k,o] x[n,c,o + tap]: per M x M block of dy (the forward's output tile) and the 6x6 x tile
// under it, this is F(R, M) with dy as the filter, on the forward's points. So V (B^T d B) is the
// forward's input transform, E = G' e G'^T transforms the dy block, the 36 products are summed over
// every tile of the batch as GEMMs Z[xi] (C x K) += V[xi]^T E[xi], and A'^T Z A' runs once per call.
#include "cpu/conv2d/conv2d_winograd_impl.h"

namespace dk::cpu::DK_WG_NS {

// G' (M -> 6) and A'^T (6 -> R) on L lanes: the Toom-Cook rule of Tf (G'[k][j] = a_k^j / N_k,
// A'^T[i][k] = a_k^i, infinity: the last tap / the last output) for r = M and m = R.
template <typename T, int M>
struct DwTf;

template <typename T>
struct DwTf<T, 2> {  // 5x5: 2x2 dy blocks, 5x5 taps
  static void dy(const T* e, int64_t si, T* u, int64_t so) {
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      const T e0 = e[l], e1 = e[si + l];
      u[l] = e0 / T(4);
      u[so + l] = -(e0 + e1) / T(6);
      u[2 * so + l] = -(e0 - e1) / T(6);
      u[3 * so + l] = (e0 + T(2) * e1) / T(24);
      u[4 * so + l] = (e0 - T(2) * e1) / T(24);
      u[5 * so + l] = e1;
    }
  }
  static void out(const T* m, int64_t si, T* o, int64_t so) {
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      const T m1 = m[si + l], m2 = m[2 * si + l], m3 = m[3 * si + l], m4 = m[4 * si + l];
      const T s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
      o[l] = m[l] + s12 + s34;
      o[so + l] = d12 + T(2) * d34;
      o[2 * so + l] = s12 + T(4) * s34;
      o[3 * so + l] = d12 + T(8) * d34;
      o[4 * so + l] = s12 + T(16) * s34 + m[5 * si + l];
    }
  }
};

template <typename T>
struct DwTf<T, 4> {  // 3x3: 4x4 dy blocks, 3x3 taps
  static void dy(const T* e, int64_t si, T* u, int64_t so) {
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      const T e0 = e[l], e1 = e[si + l], e2 = e[2 * si + l], e3 = e[3 * si + l];
      const T ev1 = e0 + e2, od1 = e1 + e3, ev2 = e0 + T(4) * e2, od2 = T(2) * e1 + T(8) * e3;
      u[l] = e0 / T(4);
      u[so + l] = -(ev1 + od1) / T(6);
      u[2 * so + l] = -(ev1 - od1) / T(6);
      u[3 * so + l] = (ev2 + od2) / T(24);
      u[4 * so + l] = (ev2 - od2) / T(24);
      u[5 * so + l] = e3;
    }
  }
  static void out(const T* m, int64_t si, T* o, int64_t so) {
#pragma omp simd
    for (int l = 0; l < L; ++l) {
      const T m1 = m[si + l], m2 = m[2 * si + l], m3 = m[3 * si + l], m4 = m[4 * si + l];
      const T s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
      o[l] = m[l] + s12 + s34;
      o[so + l] = d12 + T(2) * d34;
      o[2 * so + l] = s12 + T(4) * s34 + m[5 * si + l];
    }
  }
};

// Z[xi] += V[xi]^T E[xi] for one item (sample n, tile rows [r0, r1)); Z is [A*A][Cz][Kz]. V and E
// are written as the micro-kernel's packed panels (A: mr channels, B: nr output channels, by tiles),
// so the 36 GEMMs run the micro-kernel on them with kc = tiles and no packing.
template <typename T, int M>
void dw_item(const Winograd<T, M>& wg, int64_t n, int64_t r0, int64_t r1, const T* x, const T* dy, T* Z,
             typename Winograd<T, M>::Scratch& s) {
  constexpr int A = Winograd<T, M>::A;
  const Conv2dParams& p = wg.p;
  const int mr = wg.kr.mr, nr = wg.kr.nr;
  const int64_t K = p.K, Cz = round_up(wg.Cp, mr), Kz = round_up(p.K, std::max<int64_t>(L, nr)), tw_n = wg.tw_n;
  const int64_t tiles = (r1 - r0) * tw_n, wt_ = tw_n * M, sv = wg.ld(tiles, Cz), se = wg.ld(tiles, Kz);
  wg.input_transform(n, r0, r1, x, s, mr);
  // dy of the band channels-last, zeros past Ho and Wo (those blocks' positions have no output)
  T* db = s.ob.zeros((r1 - r0) * M * wt_ * Kz);
  const T* dyn = dy + n * K * p.Ho * p.Wo;
  for (int64_t oh = r0 * M; oh < std::min(p.Ho, r1 * M); ++oh)
    transpose(dyn + oh * p.Wo, p.Ho * p.Wo, K, p.Wo, db + (oh - r0 * M) * wt_ * Kz, Kz);
  T* E = s.Mx.get(A * A * se);
  T t[A * M * L], e[A * A * L];
  for (int64_t tr = 0; tr < r1 - r0; ++tr)
    for (int64_t tw = 0; tw < tw_n; ++tw) {
      const int64_t tile = tr * tw_n + tw;
      const T* org = db + (tr * M * wt_ + tw * M) * Kz;
      for (int64_t k0 = 0; k0 < Kz; k0 += L) {
        for (int j = 0; j < M; ++j) DwTf<T, M>::dy(org + j * Kz + k0, wt_ * Kz, t + j * L, M * L);
        if (nr % L == 0) {  // the L lanes lie in one panel
          T* et = E + (k0 / nr * tiles + tile) * nr + k0 % nr;
          for (int i = 0; i < A; ++i) DwTf<T, M>::dy(t + i * M * L, L, et + i * A * se, se);
          continue;
        }
        for (int i = 0; i < A; ++i) DwTf<T, M>::dy(t + i * M * L, L, e + i * A * L, L);
        for (int64_t k = k0; k < k0 + L; k += nr)  // L a multiple of nr
          for (int xi = 0; xi < A * A; ++xi)
            std::memcpy(E + xi * se + (k / nr * tiles + tile) * nr, e + xi * L + (k - k0), sizeof(T) * size_t(nr));
      }
    }
  for (int xi = 0; xi < A * A; ++xi)
    for (int64_t c0 = 0; c0 < Cz; c0 += mr)
      for (int64_t k0 = 0; k0 < Kz; k0 += nr)
        wg.kr.fn(tiles, s.V.data() + xi * sv + c0 * tiles, E + xi * se + k0 * tiles, Z + (xi * Cz + c0) * Kz + k0, Kz,
                 T(1), T(1));
}

template <typename T, int M>
void weight_grad_m(const Conv2dParams& p, const T* x, const T* dy, T* dw) {
  constexpr int A = Winograd<T, M>::A, R = Winograd<T, M>::R;
  const int nt = num_threads();
  const bool threads = nt > 1 && threads_for_flops(2.0 * double(p.N * p.K) * double(p.out_plane() * p.crs())) > 1;
  Winograd<T, M> wg(p);
  if (threads && p.N * wg.bands < nt) wg.set_rows((wg.th_n * p.N + nt - 1) / nt);
  const int64_t items = p.N * wg.bands, Cz = round_up(wg.Cp, wg.kr.mr);
  const int64_t Kz = round_up(p.K, std::max<int64_t>(L, wg.kr.nr)), zs = A * A * Cz * Kz;
  const int parts = threads && items > 1 ? int(std::min<int64_t>(nt, items)) : 1;
  Buf<T> zbuf;
  T* Z = zbuf.zeros(parts * zs);  // one Z per thread, summed in thread order (reproducible)
  static thread_local typename Winograd<T, M>::Scratch scratch;
#pragma omp parallel num_threads(parts) if (parts > 1)
  {
    T* mine = Z + omp_get_thread_num() * zs;
    // static: which items sum into which Z must not depend on timing (bitwise reproducible dw)
#pragma omp for schedule(static)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t n = it / wg.bands, r0 = it % wg.bands * wg.rows_t;
      dw_item(wg, n, r0, std::min(wg.th_n, r0 + wg.rows_t), x, dy, mine, scratch);
    }
#pragma omp for schedule(static)
    for (int64_t e = 0; e < zs; ++e)
      for (int q = 1; q < parts; ++q) Z[e] += Z[q * zs + e];
  }
  // dw[k, c] = A'^T Z[., c, k] A', L output channels at a time
  T o[R * A * L], q[R * R * L];
  for (int64_t c = 0; c < p.C; ++c)
    for (int64_t k0 = 0; k0 < Kz; k0 += L) {
      const T* z = Z + c * Kz + k0;
      for (int j = 0; j < A; ++j) DwTf<T, M>::out(z + j * Cz * Kz, A * Cz * Kz, o + j * L, A * L);
      for (int i = 0; i < R; ++i) DwTf<T, M>::out(o + i * A * L, L, q + i * R * L, L);
      for (int64_t k = k0; k < std::min(p.K, k0 + L); ++k)
        for (int r = 0; r < R * R; ++r) dw[(k * p.C + c) * R * R + r] = q[r * L + (k - k0)];
    }
}

template <typename T>
void weight_grad(const Conv2dParams& p, const T* x, const T* dy, T* dw) {
  if (p.kh == 5)
    weight_grad_m<T, 2>(p, x, dy, dw);
  else
    weight_grad_m<T, 4>(p, x, dy, dw);
}

}  // namespace dk::cpu::DK_WG_NS
