#pragma once
// Winograd weight gradient of a stride-1 3x3 or 5x5 convolution, ungrouped or grouped
// (conv2d_winograd.h), compiled per ISA with the forward (conv2d_winograd_impl.h). dw[k,c] = sum over
// n and output positions of dy[n,k,o] x[n,c,o + tap]: per 4x4 block of dy (the forward's F(4x4, 3x3)
// output tile) and the 6x6 x tile under it, this is F(3x3, 4x4) with dy as the filter, on the
// forward's points (5x5: four shifted 3x3 blocks, dw_blocks below). So V (B^T d B) is the forward's
// input transform, E = G' e G'^T transforms the dy block, the 36 products are summed over every tile
// of the batch as GEMMs Z[xi] (C x K) += V[xi]^T E[xi], and A'^T Z A' runs once per call. Groups are
// the outer dimension: a work item is one group's channels of a band of one sample, each group has
// its own Z, and the same code serves G = 1.
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

template <typename T, int M>
struct DwScratch {
  typename Winograd<T, M>::Scratch in;
  Buf<int64_t> offs;
};

// Z_b[xi] += V_b[xi]^T E[xi] for one item (tile rows [r0, r1) of the channels of wg.p, x's from xg on
// and dy's from dyg on: one sample, or one group of it) and every block b; Z_b is [A*A][Cz][Kz] at
// Z + b * zs, in T. V and E are written as the micro-kernel's packed panels (A: mr channels, B: nr
// output channels, by tiles; the last B panel nr/2 wide where Kz rounds to half a panel: 16 output
// channels per group with 32-wide float tiles), so the GEMMs run the micro-kernel on them with
// kc = tiles and no packing.
template <typename T, int M>
void dw_item(const Winograd<T, M>& wg, int blocks, int64_t r0, int64_t r1, const T* xg, const T* dyg, T* Z, int64_t zs,
             DwScratch<T, M>& s) {
  constexpr int A = Winograd<T, M>::A;
  const Conv2dParams& p = wg.p;
  const int mr = wg.kr.mr, nr = wg.kr.nr;
  const int64_t K = p.K, Cz = round_up(wg.Cp, mr), Kz = round_up(p.K, std::max(L, nr / 2)), tw_n = wg.tw_n;
  const int64_t tiles = (r1 - r0) * tw_n, wt_ = tw_n * M, sv = wg.ld(tiles, Cz), se = wg.ld(tiles, Kz);
  // dy of the band channels-last, zeros past Ho and Wo (those blocks' positions have no output)
  T* db = s.in.ob.zeros((r1 - r0) * M * wt_ * Kz);
  for (int64_t oh = r0 * M; oh < std::min(p.Ho, r1 * M); ++oh)
    transpose_blocks(dyg + oh * p.Wo, p.Ho * p.Wo, K, p.Wo, db + (oh - r0 * M) * wt_ * Kz, Kz);
  T* E = s.in.Mx.get(A * A * se);
  T t[A * M * L], e[A * A * L];
  for (int64_t tr = 0; tr < r1 - r0; ++tr)
    for (int64_t tw = 0; tw < tw_n; ++tw) {
      const int64_t tile = tr * tw_n + tw;
      const T* org = db + (tr * M * wt_ + tw * M) * Kz;
      for (int64_t k0 = 0; k0 < Kz; k0 += L) {
        for (int j = 0; j < M; ++j) DwTf<T, M>::dy(org + j * Kz + k0, wt_ * Kz, t + j * L, M * L);
        if (nr % L == 0) {  // the L lanes lie in one panel, nr or nr/2 wide
          const int64_t j0 = k0 / nr * nr, width = std::min<int64_t>(nr, Kz - j0);
          T* et = E + j0 * tiles + tile * width + (k0 - j0);
          for (int i = 0; i < A; ++i) DwTf<T, M>::dy(t + i * M * L, L, et + i * A * se, se);
          continue;
        }
        for (int i = 0; i < A; ++i) DwTf<T, M>::dy(t + i * M * L, L, e + i * A * L, L);
        for (int64_t k = k0; k < k0 + L; k += nr)  // L a multiple of nr
          for (int xi = 0; xi < A * A; ++xi)
            std::memcpy(E + xi * se + (k / nr * tiles + tile) * nr, e + xi * L + (k - k0), sizeof(T) * size_t(nr));
      }
    }
  // a half panel is read as B rows in place, nr/2 apart
  int64_t* offs = nullptr;
  if (Kz % nr) {
    offs = s.offs.get(tiles);
    for (int64_t i = 0; i < tiles; ++i) offs[i] = i * (nr / 2);
  }
  for (int b = 0; b < blocks; ++b) {
    wg.input_transform(xg, r0, r1, s.in, mr, block_row(b), block_col(b));
    T* zb = Z + b * zs;
    for (int xi = 0; xi < A * A; ++xi)
      for (int64_t c0 = 0; c0 < Cz; c0 += mr) {
        const T* vp = s.in.V.data() + xi * sv + c0 * tiles;
        for (int64_t k0 = 0; k0 < Kz; k0 += nr) {
          const T* ep = E + xi * se + k0 * tiles;
          T* z = zb + (xi * Cz + c0) * Kz + k0;
          if (k0 + nr <= Kz)
            wg.kr.fn(tiles, vp, ep, z, Kz, T(1), T(1));
          else
            wg.kr.fn_shifted_half(tiles, vp, ep, offs, z, Kz, T(1), T(1));
        }
      }
  }
}

// Accumulation: the micro-kernel sums each Z in T, item after item of a slot; for float32 a slot's
// sum is cut into runs of at least kRunTiles tiles per group (whole items), each added into a float64
// sum (the slots then summed and A'^T Z A' taken in float64 too). Summed in float32 over a whole slot
// the error grew with the batch: 0.64 of the tests' float32 tolerance at 4096 tiles, 1.5 at 16384;
// in runs of 1024 it stays at 0.23-0.35, and a float64 add per item (0.14-0.32) cost 4-11% of dw on
// every shape (benchmarks/results/conv.md, "One Winograd weight gradient"). A slot of at most one
// run never touches float64.
constexpr int64_t kRunTiles = 1024;

// dw[g*Kg + k, c, block taps] = A'^T Z_gb[., c, k] A' (Z in float or, after runs, double), L output
// channels at a time.
template <typename T, typename S>
void dw_output(const Conv2dParams& p, int blocks, int64_t Cz, int64_t Kz, const S* Z, T* dw) {
  constexpr int M = 4, A = Winograd<T, M>::A, R = Winograd<T, M>::R;
  const int64_t G = p.G, Cg = p.C / G, Kg = p.K / G, zs = A * A * Cz * Kz;
  S o[R * A * L], u[R * R * L];
  for (int64_t g = 0; g < G; ++g)
    for (int b = 0; b < blocks; ++b)
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t k0 = 0; k0 < Kz; k0 += L) {
          const S* z = Z + (g * blocks + b) * zs + c * Kz + k0;
          for (int j = 0; j < A; ++j) DwTf<S, M>::out(z + j * Cz * Kz, A * Cz * Kz, o + j * L, A * L);
          for (int i = 0; i < R; ++i) DwTf<S, M>::out(o + i * A * L, L, u + i * R * L, L);
          for (int64_t k = k0; k < std::min(Kg, k0 + L); ++k)
            for (int i = 0; i < R && block_row(b) + i < p.kh; ++i)
              for (int j = 0; j < R && block_col(b) + j < p.kw; ++j)
                dw[(((g * Kg + k) * Cg + c) * p.kh + block_row(b) + i) * p.kw + block_col(b) + j] =
                    T(u[(i * R + j) * L + (k - k0)]);
        }
}

template <typename T>
void weight_grad(const Conv2dParams& p, const T* x, const T* dy, T* dw) {
  constexpr int M = 4, A = Winograd<T, M>::A;
  const int nt = num_threads(), blocks = dw_blocks(p);
  const int64_t G = p.G, Cg = p.C / G, Kg = p.K / G;
  const bool threads = nt > 1 && threads_for_flops(2.0 * double(p.N * p.K) * double(p.out_plane() * p.crs())) > 1;
  // the tiling of one group's 3x3 on the same output (the blocks shift x by themselves)
  Conv2dParams q = p;
  q.C = Cg;
  q.K = Kg;
  q.G = 1;
  q.kh = q.kw = 3;
  Winograd<T, M> wg(q);
  if (threads && p.N * G * wg.bands < nt) wg.set_rows((wg.th_n * p.N * G + nt - 1) / nt);
  const int64_t items = p.N * wg.bands * G, Cz = round_up(wg.Cp, wg.kr.mr);
  const int64_t Kz = round_up(Kg, std::max(L, wg.kr.nr / 2)), zs = A * A * Cz * Kz, zg = blocks * zs, za = G * zg;
  const int parts = threads && items > 1 ? int(std::min<int64_t>(nt, items)) : 1;
  const int64_t run = kRunTiles * G;  // a slot's tiles per run, all groups
  const bool runs = sizeof(T) < sizeof(double) && (items + parts - 1) / parts * wg.rows_t * wg.tw_n > run;
  Buf<T> zbuf;
  T* Z = zbuf.zeros(parts * za);  // one set of Z per slot, summed in slot order (reproducible)
  Buf<double> rbuf;
  double* Zr = runs ? rbuf.get(parts * za) : nullptr;  // the runs' sums, per slot
  static thread_local DwScratch<T, M> scratch;
  const int64_t xs = Cg * p.H * p.W, ys = Kg * p.Ho * p.Wo;  // a group's channels
#pragma omp parallel num_threads(team(parts)) if (parts > 1)
  {
    // A slot, not a thread, owns each Z and a fixed run of items: which items sum into which Z
    // depends neither on timing nor on the team's size (it shrinks on a busy machine, parallel.h).
#pragma omp for schedule(dynamic)
    for (int slot = 0; slot < parts; ++slot) {
      T* mine = Z + slot * za;
      const int64_t i0 = items * slot / parts, i1 = items * (slot + 1) / parts;
      int64_t since = 0;
      bool first = true;  // the slot's first run is stored, not added (no zeroing pass)
      for (int64_t it = i0; it < i1; ++it) {
        const int64_t g = it % G, nb = it / G, n = nb / wg.bands, r0 = nb % wg.bands * wg.rows_t;
        const int64_t r1 = std::min(wg.th_n, r0 + wg.rows_t);
        dw_item(wg, blocks, r0, r1, x + (n * G + g) * xs, dy + (n * G + g) * ys, mine + g * zg, zs, scratch);
        since += (r1 - r0) * wg.tw_n;
        if (!runs || (since < run && it + 1 < i1)) continue;
        double* sum = Zr + slot * za;  // the run into double, Z zeroed for the next
        if (first) {
#pragma omp simd
          for (int64_t e = 0; e < za; ++e) sum[e] = double(mine[e]);
        } else {
#pragma omp simd
          for (int64_t e = 0; e < za; ++e) sum[e] += double(mine[e]);
        }
        if (it + 1 < i1) std::memset(mine, 0, sizeof(T) * size_t(za));
        first = false;
        since = 0;
      }
    }
    if (runs) {
#pragma omp for schedule(static)
      for (int64_t e = 0; e < za; ++e)
        for (int t = 1; t < parts; ++t) Zr[e] += Zr[t * za + e];
    } else {
#pragma omp for schedule(static)
      for (int64_t e = 0; e < za; ++e)
        for (int t = 1; t < parts; ++t) Z[e] += Z[t * za + e];
    }
  }
  if (runs)
    dw_output(p, blocks, Cz, Kz, Zr, dw);
  else
    dw_output(p, blocks, Cz, Kz, Z, dw);
}

}  // namespace dk::cpu::DK_WG_NS
