// conv2d forward by the shifted GEMM (conv2d_shifted.h; the plan: conv2d_shifted_plan.h).
#include "cpu/conv2d/conv2d_shifted_plan.h"

namespace dk::cpu {

using shifted_detail::Shifted;

namespace {

// Bands of output rows per sample: at least kItemsPerThread work items per thread, bands of at
// least kMinBandRows rows (a band pads (kh - 1) * dh / sh + 1 phase rows more than it computes).
int64_t row_bands(int64_t N, int64_t Ho, int nt) {
  constexpr int64_t kItemsPerThread = 16, kMinBandRows = 16;
  const int64_t want = (kItemsPerThread * nt + N - 1) / N;
  return std::clamp<int64_t>(std::min(want, Ho / kMinBandRows), 1, Ho);
}

}  // namespace

template <typename T>
void conv2d_forward_shifted(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  const int nt = num_threads();
  const bool threads = threads_for_flops(2.0 * double(p.N * p.K) * double(p.out_plane() * p.crs())) > 1;
  const Shifted<T> s(p, w, true, b, !threads || p.N >= nt);  // the bias is a tap of the GEMM
  const int64_t panels = s.Qp / s.kr.nr;
  if (!threads || p.N >= nt) {
    // Whole samples per thread, each with its own padded input and output buffers. (One
    // thread: a plain loop, not a parallel region per sample, which costs a few us each.)
    // Row tiles on few samples per thread go by bands of output rows (each pads only the rows it
    // reads), so that a thread slowed by another process leaves less of the work at the end.
    const int64_t bands = threads && s.row_tiles() && !s.lazy_pad() ? row_bands(p.N, p.Ho, nt) : 1;
#pragma omp parallel num_threads(team(nt)) if (threads)
    {
      T* xp = s.input_buffer();
      const bool lazy = s.lazy_pad();
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < p.N * bands; ++item) {
        const int64_t n = item / bands, band = item % bands;
        const T* x_n = x + n * p.C * p.in_plane();
        if (bands > 1) {
          const int64_t oh0 = p.Ho * band / bands, oh1 = p.Ho * (band + 1) / bands;
          int64_t r0, r1;
          s.row_band_rows(oh0, oh1, r0, r1);
          s.pad(x_n, xp, 0, p.C, r0, r1);
          s.run_row_tiles(xp, y + n * p.K * p.out_plane(), oh0 * s.tiles_per_row(), oh1 * s.tiles_per_row());
          continue;
        }
        shifted_detail::LazyPad<T> lp{x_n, xp};
        if (!lazy) s.pad(x_n, xp, 0, p.C);
        if (s.row_tiles())
          s.run_row_tiles(xp, y + n * p.K * p.out_plane(), 0, s.row_tile_count(), lazy ? &lp : nullptr);
        else
          s.run(xp, y + n * p.K * p.out_plane(), 0, panels, lazy ? &lp : nullptr);
      }
    }
    return;
  }
  // Few samples: one at a time, threads split the channels, then the column panels.
  T* xp = s.input_buffer();
  for (int64_t n = 0; n < p.N; ++n) {
    const T* x_n = x + n * p.C * p.in_plane();
    T* y_n = y + n * p.K * p.out_plane();
#pragma omp parallel num_threads(team(nt))
    {
      const int t = omp_get_thread_num(), T_ = omp_get_num_threads();
      s.pad(x_n, xp, p.C * t / T_, p.C * (t + 1) / T_);
#pragma omp barrier
      if (s.row_tiles()) {
        const int64_t tiles = s.row_tile_count();
        s.run_row_tiles(xp, y_n, tiles * t / T_, tiles * (t + 1) / T_);
      } else {
        s.run(xp, y_n, panels * t / T_, panels * (t + 1) / T_);
      }
    }
  }
}

template void conv2d_forward_shifted<float>(const Conv2dParams&, const float*, const float*, const float*, float*);
template void conv2d_forward_shifted<double>(const Conv2dParams&, const double*, const double*, const double*, double*);

}  // namespace dk::cpu
