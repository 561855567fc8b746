#pragma once
// Grouped Winograd F(4x4, 3x3) forward (conv2d_winograd_grouped.h), compiled per ISA with the
// transforms, transposes and buffers of conv2d_winograd_impl.h. A work item is (sample, band of
// tile rows, group): the group's Cg channels go channels-last into a zero-padded buffer straight
// from x, and its 36 GEMMs are [tiles x Cgp] x [Cgp x Kgp] on the micro-kernel's row-pointer form,
// on the half-width tile for the last nr/2 columns (Kg = 16 with 32-wide float tiles: no padding).
// Cgp, Kgp: Cg rounded to L, Kg to L and to half a panel, with zeros. Floor written against: the 36
// GEMMs at the micro-kernel's rate plus x and y through memory once (benchmarks/results/conv.md,
// "Grouped 3x3"). The weight gradient of these convolutions is conv2d_winograd_dw_impl.h's, groups
// as its outer dimension.
#include "cpu/conv2d/conv2d_winograd_impl.h"

DK_ISA_DECLARE(namespace winograd {
  template <typename T>
  void forward_grouped(const Conv2dParams&, const T*, const T*, const T*, T*);
})

#define DK_INSTANTIATE_WINOGRAD_GROUPED_ISA(T) \
  template void forward_grouped<T>(const Conv2dParams&, const T*, const T*, const T*, T*);

namespace dk::cpu::DK_WG_NS {

template <typename T>
struct GroupedWinograd {
  static constexpr int M = 4, A = 6;
  using Tf4 = Tf<T, 4>;
  const Conv2dParams& p;
  const GemmKernel<T>& kr;
  int64_t Cg, Kg, Cgp, Kgp, th_n, tw_n, wp, rows_t, bands;
  Buf<T> U;     // [G][A*A][panels j: [Cgp][width_j]], width nr (the last one nr or nr/2)
  Buf<T> bias;  // [G][Kgp], zeros past Kg (or all zeros)

  struct Scratch {
    Buf<T> xt, V, Mx, ob;
  };

  GroupedWinograd(const Conv2dParams& p_, const T* w, const T* b, bool par) : p(p_), kr(gemm_kernel<T>()) {
    Cg = p.C / p.G;
    Kg = p.K / p.G;
    Cgp = round_up(Cg, L);
    Kgp = round_up(Kg, std::max<int64_t>(L, kr.nr / 2));
    th_n = (p.Ho + M - 1) / M;
    tw_n = (p.Wo + M - 1) / M;
    wp = tw_n * M + 2;
    // ~96 tiles per item, as conv2d_winograd_impl.h
    set_rows((96 + tw_n - 1) / tw_n);
    transform_weights(w, par);
    T* bp = bias.zeros(p.G * Kgp);
    for (int64_t g = 0; b && g < p.G; ++g)
      for (int64_t k = 0; k < Kg; ++k) bp[g * Kgp + k] = b[g * Kg + k];
  }

  void set_rows(int64_t r) {
    rows_t = std::clamp<int64_t>(r, 1, th_n);
    bands = (th_n + rows_t - 1) / rows_t;
  }

  int64_t u_size() const { return A * A * Cgp * Kgp; }

  // U from w, per call (groups split over the threads when `par`): each channel's taps gathered k
  // fastest, transformed L output channels at a time, scattered into the panels.
  void transform_weights(const T* w, bool par) {
    const int64_t nr = kr.nr;
    T* u_all = U.zeros(p.G * u_size());
#pragma omp parallel for schedule(static) num_threads(team(num_threads())) if (par && p.G > 1)
    for (int64_t g = 0; g < p.G; ++g) {
      Buf<T> wt_buf;
      T* wt = wt_buf.zeros(9 * Kgp);  // one channel's taps, k fastest (zeros past Kg stay)
      T t[A * 3 * L], u[A * A * L];
      int64_t off[L];  // lane l of a k0 block: its place in a panel row, less c's
      for (int64_t c = 0; c < Cg; ++c) {
        for (int64_t k = 0; k < Kg; ++k)
          for (int r = 0; r < 9; ++r) wt[r * Kgp + k] = w[((g * Kg + k) * Cg + c) * 9 + r];
        for (int64_t k0 = 0; k0 < Kgp; k0 += L) {
          for (int j = 0; j < 3; ++j) Tf4::filter(wt + j * Kgp + k0, 3 * Kgp, t + j * L, 3 * L);
          for (int i = 0; i < A; ++i) Tf4::filter(t + i * 3 * L, L, u + i * A * L, L);
          for (int l = 0; l < L; ++l) {
            const int64_t k = k0 + l, j0 = k / nr * nr, width = std::min(nr, Kgp - j0);
            off[l] = j0 * Cgp + c * width + (k - j0);
          }
          for (int xi = 0; xi < A * A; ++xi) {
            T* ux = u_all + g * u_size() + xi * Kgp * Cgp;
            for (int l = 0; l < L; ++l) ux[off[l]] = u[xi * L + l];
          }
        }
      }
    }
  }

  // V[xi] (tiles x Cgp, rows sv apart) = B^T d B for the tiles of sample n, tile rows [r0, r1),
  // group g: the group's channels go channels-last into zero-padded rows first.
  T* input_stage(int64_t n, int64_t r0, int64_t r1, int64_t g, const T* x, Scratch& s, int64_t& sv) const {
    const int64_t H = p.H, W = p.W;
    const int64_t hb = (r1 - r0) * M + 2, tiles = (r1 - r0) * tw_n;
    // zeros where nothing is copied (padding), all of it when channels are padded too
    T* xt = Cg == Cgp ? s.xt.get(hb * wp * Cgp) : s.xt.zeros(hb * wp * Cgp);
    // one line between the A*A matrices, so that their rows do not all map to the same cache sets
    sv = tiles * Cgp + L;
    T* V = s.V.get(A * A * sv);
    const T* xg = x + (n * p.C + g * Cg) * H * W;
    for (int64_t r = 0; r < hb; ++r) {
      const int64_t h = r0 * M + r - p.ph, pw = std::min(p.pw, wp);
      const int64_t wn = h < 0 || h >= H ? 0 : std::max<int64_t>(0, std::min(W, wp - pw));
      T* row = xt + r * wp * Cgp;
      if (Cg == Cgp) {
        std::memset(row, 0, sizeof(T) * size_t((wn ? pw : wp) * Cgp));
        if (wn) std::memset(row + (pw + wn) * Cgp, 0, sizeof(T) * size_t((wp - pw - wn) * Cgp));
      }
      if (wn) transpose_blocks(xg + h * W, H * W, Cg, wn, row + pw * Cgp, Cgp);
    }
    T t[A * A * L];
    for (int64_t tr = 0; tr < r1 - r0; ++tr)
      for (int64_t tw = 0; tw < tw_n; ++tw) {
        const int64_t tile = tr * tw_n + tw;
        const T* org = xt + (tr * M * wp + tw * M) * Cgp;
        for (int64_t c0 = 0; c0 < Cgp; c0 += L) {
          for (int j = 0; j < A; ++j) Tf4::data(org + j * Cgp + c0, wp * Cgp, t + j * L, A * L);
          for (int i = 0; i < A; ++i) Tf4::data(t + i * A * L, L, V + i * A * sv + tile * Cgp + c0, sv);
        }
      }
    return V;
  }

  // Item: sample n, tile rows [r0, r1), group g.
  void run_item(int64_t n, int64_t r0, int64_t r1, int64_t g, const T* x, T* y, Scratch& s) const {
    const int64_t P = p.Ho * p.Wo, tiles = (r1 - r0) * tw_n, wt_ = tw_n * M;
    int64_t sv;
    const T* V = input_stage(n, r0, r1, g, x, s, sv);
    const int64_t sm = tiles * Kgp + L;
    T* Mx = s.Mx.get(A * A * sm);
    T* ob = s.ob.get((r1 - r0) * M * wt_ * Kgp);
    // M[xi] = V[xi] U[xi]: MR tiles x (NR or NR/2) output channels per micro-kernel call. Tiles
    // past the last (up to MR - 1) read the last tile's row.
    const int mr = kr.mr;
    const int64_t nr = kr.nr;
    const T* rows[kMaxPanel];
    const T* ug = U.data() + g * u_size();
    for (int xi = 0; xi < A * A; ++xi)
      for (int64_t j0 = 0; j0 < Kgp; j0 += nr) {
        const int64_t width = std::min(nr, Kgp - j0);
        const auto fn = width == nr ? kr.fn_rows : kr.fn_rows_half;
        const T* up = ug + (xi * Kgp + j0) * Cgp;
        T* mx = Mx + xi * sm + j0;
        for (int64_t i0 = 0; i0 < tiles; i0 += mr) {
          for (int i = 0; i < mr; ++i) rows[i] = V + xi * sv + std::min(i0 + i, tiles - 1) * Cgp;
          if (i0 + mr <= tiles) {
            fn(Cgp, rows, up, mx + i0 * Kgp, Kgp, T(1), T(0));
            continue;
          }
          // the last few tiles one by one (a full call would compute mr rows, e.g. 8 for 1 of 49)
          for (int64_t i = i0; i < tiles; ++i) {
            const T* v = V + xi * sv + i * Cgp;
            typedef T Vec __attribute__((vector_size(L * sizeof(T))));
            for (int64_t l0 = 0; l0 < width; l0 += L) {
              if (width - l0 < L) {  // a panel narrower than L (nr = 8): lane by lane
                for (int64_t l = l0; l < width; ++l) {
                  T a = T(0);
                  for (int64_t c = 0; c < Cgp; ++c) a += v[c] * up[c * width + l];
                  mx[i * Kgp + l] = a;
                }
                continue;
              }
              Vec acc[4] = {}, u;  // 4 chains: one would wait on each add (Cgp is a multiple of 16)
              for (int64_t c = 0; c < Cgp; ++c) {
                std::memcpy(&u, up + c * width + l0, sizeof(Vec));
                acc[c % 4] += v[c] * u;
              }
              const Vec sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
              std::memcpy(mx + i * Kgp + l0, &sum, sizeof(Vec));
            }
          }
        }
      }
    // output transform (+ bias) into channels-last rows, then to y
    T o[M * A * L], q[M * M * L];
    const T* bg = bias.data() + g * Kgp;
    for (int64_t tr = 0; tr < r1 - r0; ++tr)
      for (int64_t tw = 0; tw < tw_n; ++tw) {
        const int64_t tile = tr * tw_n + tw;
        T* dst = ob + (tr * M * wt_ + tw * M) * Kgp;
        for (int64_t k0 = 0; k0 < Kgp; k0 += L) {
          const T* m = Mx + tile * Kgp + k0;
          for (int j = 0; j < A; ++j) Tf4::output(m + j * sm, A * sm, o + j * L, A * L);
          for (int i = 0; i < M; ++i) Tf4::output(o + i * A * L, L, q + i * M * L, L);
          const T* bk = bg + k0;
          for (int i = 0; i < M; ++i)
            for (int j = 0; j < M; ++j) {
              T* d = dst + (i * wt_ + j) * Kgp + k0;
              const T* qs = q + (i * M + j) * L;
#pragma omp simd
              for (int l = 0; l < L; ++l) d[l] = qs[l] + bk[l];
            }
        }
      }
    const int64_t oh0 = r0 * M, oh1 = std::min(p.Ho, r1 * M);
    T* yg = y + (n * p.K + g * Kg) * P;
    // 8 output planes at a time (planes a multiple of 4 KiB apart compete for L1 sets)
    for (int64_t k0 = 0; k0 < Kg; k0 += 8)
      for (int64_t oh = oh0; oh < oh1; ++oh)
        transpose_blocks(ob + (oh - oh0) * wt_ * Kgp + k0, Kgp, p.Wo, std::min<int64_t>(8, Kg - k0),
                         yg + k0 * P + oh * p.Wo, P);
  }
};

template <typename T>
void forward_grouped(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  const int nt = num_threads();
  const bool threads = nt > 1 && threads_for_flops(2.0 * double(p.N * p.K) * double(p.out_plane() * p.crs())) > 1;
  GroupedWinograd<T> wg(p, w, b, threads);
  if (threads && p.N * p.G * wg.bands < nt) wg.set_rows((wg.th_n * p.N * p.G + nt - 1) / nt);
  const int64_t items = p.N * wg.bands * p.G;
  static thread_local typename GroupedWinograd<T>::Scratch scratch;
#pragma omp parallel for schedule(dynamic) num_threads(team(nt)) if (threads && items > 1)
  for (int64_t it = 0; it < items; ++it) {
    const int64_t g = it % p.G, nb = it / p.G, n = nb / wg.bands, r0 = nb % wg.bands * wg.rows_t;
    wg.run_item(n, r0, std::min(wg.th_n, r0 + wg.rows_t), g, x, y, scratch);
  }
}

}  // namespace dk::cpu::DK_WG_NS
