#pragma once
// Winograd weight gradient of a stride-1 3x3 or 5x5 convolution (conv2d_winograd.h), compiled per
// ISA with the forward (conv2d_winograd_impl.h). dw[k,c] = sum over n and output positions of
// dy[n,k,o] x[n,c,o + tap]: per 4x4 block of dy (the forward's F(4x4, 3x3) output tile) and the 6x6
// x tile under it, this is F(3x3, 4x4) with dy as the filter, on the forward's points (5x5: four
// shifted 3x3 blocks, dw_blocks below). So V (B^T d B) is the forward's input transform,
// E = G' e G'^T transforms the dy block, the 36 products are summed over every tile of the batch as
// GEMMs Z[xi] (C x K) += V[xi]^T E[xi], and A'^T Z A' runs once per call.
#include "cpu/conv2d/conv2d_winograd_impl.h"

namespace dk::cpu::DK_WG_NS {

// The 3x3 blocks of a kh x kw kernel: 1 (3x3) or 4 (5x5: taps shifted by 0 or 3 rows and columns,
// those past 5 dropped). Each block is F(3x3, 4x4) on x read that far on; they share dy's transform.
// Same 9 multiplies per output and channel pair as F(5x5, 2x2) would take, but F(3x3, 4x4)'s
// rounding: F(5x5, 2x2)'s output transform (16 at the point 2) left float32 dw at ~0.6 of the tests'
// tolerance (conv.md, "Weight gradient").
inline int dw_blocks(const Conv2dParams& p) { return p.kh == 5 ? 4 : 1; }
inline int block_row(int b) { return b / 2 * 3; }
inline int block_col(int b) { return b % 2 * 3; }

// Z_b[xi] += V_b[xi]^T E[xi] for one item (sample n, tile rows [r0, r1)) and every block b; Z_b is
// [A*A][Cz][Kz] at Z + b * zs. V and E are written as the micro-kernel's packed panels (A: mr
// channels, B: nr output channels, by tiles), so the GEMMs run the micro-kernel on them with
// kc = tiles and no packing.
template <typename T, int M>
void dw_item(const Winograd<T, M>& wg, int blocks, int64_t n, int64_t r0, int64_t r1, const T* x, const T* dy, T* Z,
             int64_t zs, typename Winograd<T, M>::Scratch& s) {
  constexpr int A = Winograd<T, M>::A;
  const Conv2dParams& p = wg.p;
  const int mr = wg.kr.mr, nr = wg.kr.nr;
  const int64_t K = p.K, Cz = round_up(wg.Cp, mr), Kz = round_up(p.K, std::max<int64_t>(L, nr)), tw_n = wg.tw_n;
  const int64_t tiles = (r1 - r0) * tw_n, wt_ = tw_n * M, sv = wg.ld(tiles, Cz), se = wg.ld(tiles, Kz);
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
  for (int b = 0; b < blocks; ++b) {
    wg.input_transform(n, r0, r1, x, s, mr, block_row(b), block_col(b));
    T* zb = Z + b * zs;
    for (int xi = 0; xi < A * A; ++xi)
      for (int64_t c0 = 0; c0 < Cz; c0 += mr)
        for (int64_t k0 = 0; k0 < Kz; k0 += nr)
          wg.kr.fn(tiles, s.V.data() + xi * sv + c0 * tiles, E + xi * se + k0 * tiles, zb + (xi * Cz + c0) * Kz + k0,
                   Kz, T(1), T(1));
  }
}

template <typename T>
void weight_grad(const Conv2dParams& p, const T* x, const T* dy, T* dw) {
  constexpr int M = 4, A = Winograd<T, M>::A, R = Winograd<T, M>::R;
  const int nt = num_threads(), blocks = dw_blocks(p);
  const bool threads = nt > 1 && threads_for_flops(2.0 * double(p.N * p.K) * double(p.out_plane() * p.crs())) > 1;
  Conv2dParams q = p;  // the tiling of a 3x3 on the same output (the blocks shift x by themselves)
  q.kh = q.kw = 3;
  Winograd<T, M> wg(q);
  if (threads && p.N * wg.bands < nt) wg.set_rows((wg.th_n * p.N + nt - 1) / nt);
  const int64_t items = p.N * wg.bands, Cz = round_up(wg.Cp, wg.kr.mr);
  const int64_t Kz = round_up(p.K, std::max<int64_t>(L, wg.kr.nr)), zs = A * A * Cz * Kz, za = blocks * zs;
  const int parts = threads && items > 1 ? int(std::min<int64_t>(nt, items)) : 1;
  Buf<T> zbuf;
  T* Z = zbuf.zeros(parts * za);  // one set of Z per slot, summed in slot order (reproducible)
  static thread_local typename Winograd<T, M>::Scratch scratch;
#pragma omp parallel num_threads(team(parts)) if (parts > 1)
  {
    // A slot, not a thread, owns each Z and a fixed run of items: which items sum into which Z
    // depends neither on timing nor on the team's size (it shrinks on a busy machine, parallel.h).
#pragma omp for schedule(dynamic)
    for (int slot = 0; slot < parts; ++slot) {
      T* mine = Z + slot * za;
      for (int64_t it = items * slot / parts; it < items * (slot + 1) / parts; ++it) {
        const int64_t n = it / wg.bands, r0 = it % wg.bands * wg.rows_t;
        dw_item(wg, blocks, n, r0, std::min(wg.th_n, r0 + wg.rows_t), x, dy, mine, zs, scratch);
      }
    }
#pragma omp for schedule(static)
    for (int64_t e = 0; e < za; ++e)
      for (int t = 1; t < parts; ++t) Z[e] += Z[t * za + e];
  }
  // dw[k, c, block taps] = A'^T Z_b[., c, k] A', L output channels at a time
  T o[R * A * L], u[R * R * L];
  for (int b = 0; b < blocks; ++b)
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t k0 = 0; k0 < Kz; k0 += L) {
        const T* z = Z + b * zs + c * Kz + k0;
        for (int j = 0; j < A; ++j) DwTf<T, M>::out(z + j * Cz * Kz, A * Cz * Kz, o + j * L, A * L);
        for (int i = 0; i < R; ++i) DwTf<T, M>::out(o + i * A * L, L, u + i * R * L, L);
        for (int64_t k = k0; k < std::min(p.K, k0 + L); ++k)
          for (int i = 0; i < R && block_row(b) + i < p.kh; ++i)
            for (int j = 0; j < R && block_col(b) + j < p.kw; ++j)
              dw[((k * p.C + c) * p.kh + block_row(b) + i) * p.kw + block_col(b) + j] = u[(i * R + j) * L + (k - k0)];
      }
}

}  // namespace dk::cpu::DK_WG_NS
