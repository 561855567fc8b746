// Positions-as-rows convolution (conv2d_posrows.h). Work items are bands of output rows of one
// sample. Per item: for each block of input channels (about kKc taps), copy the band's input rows of
// those channels zero-padded (they then stay in L2), then for each NR-wide panel of output channels
// (its packed weights stay in L1) run every MR-position tile of the band, accumulating into a
// per-band tile buffer; the last block's tiles go to y transposed, plus the bias.
// Every output is summed by one tile in a fixed order: results do not depend on the thread count.
#include "cpu/conv2d/conv2d_posrows.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/common/parallel.h"
#include "cpu/conv2d/conv2d_posrows_kernel.h"
#include "cpu/conv2d/conv2d_scratch.h"

namespace dk::cpu {

namespace {

constexpr int64_t kKc = 256;              // taps per block (whole channels)
constexpr int64_t kBandBytes = 96 << 10;  // a band's tile buffer: positions x padded channels
constexpr int64_t kGroupBytes = 2 << 20;  // dw: padded inputs and transposed dy of a group of samples
// With few samples per thread, bands get smaller until each thread has this many items, so that
// the last item (the one thread still running while the others wait) is short.
constexpr int64_t kItemsPerWorker = 4;

struct Plan {
  int64_t cb, blocks;      // input channels per block, blocks
  int64_t rows, bands;     // output rows per band, bands per sample
  int64_t Wp, band_rows;   // padded row width, input rows a band reads
  int64_t nr, Kp, panels;  // output channels rounded up to NR-wide panels
  int64_t taps;            // kh * kw
};

template <typename T>
Plan make_plan(const Conv2dParams& p, int64_t nr, int workers) {
  Plan pl{};
  pl.taps = p.kh * p.kw;
  pl.blocks = (p.C * pl.taps + kKc - 1) / kKc;
  pl.cb = (p.C + pl.blocks - 1) / pl.blocks;
  pl.blocks = (p.C + pl.cb - 1) / pl.cb;
  pl.nr = nr;
  pl.Kp = (p.K + nr - 1) / nr * nr;
  pl.panels = pl.Kp / nr;
  const int64_t positions = kBandBytes / (pl.Kp * int64_t(sizeof(T)));
  int64_t r = std::clamp<int64_t>(positions / p.Wo, 1, p.Ho);
  if (workers > 1) r = std::min(r, std::max<int64_t>(1, p.Ho / ((kItemsPerWorker * workers + p.N - 1) / p.N)));
  pl.bands = (p.Ho + r - 1) / r;
  pl.rows = (p.Ho + pl.bands - 1) / pl.bands;
  pl.Wp = p.W + 2 * p.pw;
  pl.band_rows = (pl.rows - 1) * p.sh + (p.kh - 1) * p.dh + 1;
  return pl;
}

}  // namespace

bool posrows_applies(const Conv2dParams& p) {
  return p.G == 1 && p.sh == 2 && p.sw == 2 && p.C >= 16 && p.K >= 16 && p.kh * p.kw > 1;
}

template <typename T>
void conv2d_forward_posrows(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  const posrows::Kernel<T>& kr = posrows::Kernel<T>::get();
  const int nt = num_threads();
  const bool threads = threads_for_flops(2.0 * double(p.N * p.K) * double(p.out_plane() * p.crs())) > 1;
  const Plan pl = make_plan<T>(p, kr.nr, threads ? nt : 1);
  const int64_t nr = pl.nr, mr = kr.mr, crs = p.crs(), P = p.out_plane();
  // weights: block (channels [c0, c1)) at c0*taps*Kp, its panel jr at + jr*kc*NR, [k][NR]; read
  // along w's rows (a panel's kc x NR values stay in L1 while its NR rows are scattered into it)
  std::vector<T> wp(size_t(crs * pl.Kp));
  for (int64_t c0 = 0; c0 < p.C; c0 += pl.cb) {
    const int64_t kc = (std::min(p.C, c0 + pl.cb) - c0) * pl.taps;
    T* blk = wp.data() + c0 * pl.taps * pl.Kp;
    for (int64_t ch = 0; ch < pl.Kp; ++ch) {
      T* dst = blk + ch / nr * kc * nr + ch % nr;
      if (ch >= p.K) {
        for (int64_t k = 0; k < kc; ++k) dst[k * nr] = T(0);
        continue;
      }
      const T* src = w + ch * crs + c0 * pl.taps;
      for (int64_t k = 0; k < kc; ++k) dst[k * nr] = src[k];
    }
  }
  // tap (local channel, i, j) of a block, relative to a position's first input value
  std::vector<int64_t> offs(size_t(pl.cb * pl.taps));
  for (int64_t c = 0; c < pl.cb; ++c)
    for (int64_t i = 0; i < p.kh; ++i)
      for (int64_t j = 0; j < p.kw; ++j)
        offs[size_t((c * p.kh + i) * p.kw + j)] = (c * pl.band_rows + i * p.dh) * pl.Wp + j * p.dw;
  const int64_t tiles_max = (pl.rows * p.Wo + mr - 1) / mr;
  const int64_t items = p.N * pl.bands;
#pragma omp parallel num_threads(team(nt)) if (threads && items > 1)
  {
    T* buf = conv_thread_buffer<T>(kPadSlot, size_t(pl.cb * pl.band_rows * pl.Wp));
    T* acc = conv_thread_buffer<T>(kOutSlot, size_t(tiles_max * pl.panels * mr * nr));
    std::vector<const T*> ptrs(size_t(tiles_max * mr));
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t n = item / pl.bands, oh0 = item % pl.bands * pl.rows;
      const int64_t oh1 = std::min(p.Ho, oh0 + pl.rows), pos = (oh1 - oh0) * p.Wo, tiles = (pos + mr - 1) / mr;
      for (int64_t q = 0; q < tiles * mr; ++q) {  // a last partial tile repeats the band's last position
        const int64_t qq = std::min(q, pos - 1);
        ptrs[size_t(q)] = buf + qq / p.Wo * p.sh * pl.Wp + qq % p.Wo * p.sw;
      }
      const T* x_n = x + n * p.C * p.in_plane();
      T* y_n = y + n * p.K * P + oh0 * p.Wo;
      const int64_t h0 = oh0 * p.sh - p.ph;  // input row of the band's first buffer row
      for (int64_t c0 = 0; c0 < p.C; c0 += pl.cb) {
        const int64_t c1 = std::min(p.C, c0 + pl.cb), kc = (c1 - c0) * pl.taps;
        const bool first = c0 == 0, last = c1 == p.C;
        for (int64_t c = c0; c < c1; ++c)
          for (int64_t r = 0; r < pl.band_rows; ++r) {
            T* row = buf + ((c - c0) * pl.band_rows + r) * pl.Wp;
            const int64_t h = h0 + r;
            if (h < 0 || h >= p.H) {
              std::fill(row, row + pl.Wp, T(0));
              continue;
            }
            std::fill(row, row + p.pw, T(0));
            std::memcpy(row + p.pw, x_n + (c * p.H + h) * p.W, sizeof(T) * size_t(p.W));
            std::fill(row + p.pw + p.W, row + pl.Wp, T(0));
          }
        const T* wblk = wp.data() + c0 * pl.taps * pl.Kp;
        for (int64_t jr = 0; jr < pl.panels; ++jr) {
          const T* wpanel = wblk + jr * kc * nr;
          for (int64_t t = 0; t < tiles; ++t) {
            T* ct = acc + (t * pl.panels + jr) * mr * nr;
            kr.fn(kc, wpanel, ptrs.data() + t * mr, offs.data(), ct, first);
            if (!last) continue;
            const int64_t m = std::min<int64_t>(mr, pos - t * mr), chs = std::min(nr, p.K - jr * nr);
            for (int64_t j = 0; j < chs; ++j) {
              const int64_t ch = jr * nr + j;
              const T bk = b ? b[ch] : T(0);
              T* dst = y_n + ch * P + t * mr;
              for (int64_t i = 0; i < m; ++i) dst[i] = ct[i * nr + j] + bk;
            }
          }
        }
      }
    }
  }
}

// dw of the same convolutions by the same tile with the roles turned: the rows are the taps
// (c, i, j), each a pointer into a zero-padded copy of the sample's input, the columns are output
// channels (a panel of dy transposed to positions x channels), and the inner dimension is the
// output positions, offset by (oh * sh) * Wp + ow * sw from every tap's pointer. dw^T accumulates
// in one tile per (tap rows, channel panel), samples and position blocks in a fixed order, so the
// result does not depend on the thread count; every product is an im2col term (padding zeros
// included), so non-finite x or dy give what im2col gives.
bool posrows_dw_applies(const Conv2dParams& p) { return posrows_applies(p) && (p.out_plane() >= 128 || p.C >= 128); }

template <typename T>
void conv2d_weight_grad_posrows(const Conv2dParams& p, const T* x, const T* dy, T* dw) {
  const posrows::Kernel<T>& kr = posrows::Kernel<T>::get();
  const int nt = num_threads();
  const bool threads = threads_for_flops(2.0 * double(p.N * p.K) * double(p.out_plane() * p.crs())) > 1;
  const int64_t nr = kr.nr, mr = kr.mr, Kp = (p.K + nr - 1) / nr * nr, panels = Kp / nr;
  const int64_t P = p.out_plane(), R = p.crs(), tiles = (R + mr - 1) / mr, taps = p.kh * p.kw;
  const int64_t Hp = p.H + 2 * p.ph, Wp = p.W + 2 * p.pw, plane = Hp * Wp;
  // Samples are prepared (padded x, transposed dy) a group at a time, one barrier per group: small
  // images would otherwise spend more on barriers than on their FMAs. The group does not change
  // the order of the sums (samples one after another in every tile).
  const int64_t per_sample = p.C * plane + panels * P * nr;
  const int64_t group = std::clamp<int64_t>(kGroupBytes / (per_sample * int64_t(sizeof(T))), 1, p.N);
  // the calling thread's scratch, shared with the team (kept between calls: no allocation or zero
  // fill per call; every element is written before it is read)
  T* xpad = conv_thread_buffer<T>(kPadSlot, size_t(group * p.C * plane));        // sample s at s*C*plane
  T* dyt = conv_thread_buffer<T>(kGatherSlot, size_t(group * panels * P * nr));  // (jr, s) at (jr*group + s)*P*nr
  T* acc = conv_thread_buffer<T>(kOutSlot, size_t(tiles * panels * mr * nr));  // tile (t, jr) at (t*panels + jr)*mr*nr
  // the inner dimension runs over the group's samples and their positions, sample after sample, so
  // small images still give the tile long runs: position q of sample s is s*C*plane + its offset
  std::vector<int64_t> offs(static_cast<size_t>(group * P)), rows(static_cast<size_t>(tiles * mr));
  for (int64_t s = 0; s < group; ++s)
    for (int64_t q = 0; q < P; ++q) offs[size_t(s * P + q)] = s * p.C * plane + q / p.Wo * p.sh * Wp + q % p.Wo * p.sw;
  for (int64_t r = 0; r < tiles * mr; ++r) {  // a last partial tile repeats the last tap
    const int64_t rr = std::min(r, R - 1), c = rr / taps, i = rr % taps / p.kw, j = rr % p.kw;
    rows[size_t(r)] = c * plane + i * p.dh * Wp + j * p.dw;
  }
#pragma omp parallel num_threads(team(nt)) if (threads)
  {
    std::vector<const T*> ptrs(static_cast<size_t>(mr));
    for (int64_t n0 = 0; n0 < p.N; n0 += group) {
      const int64_t ns = std::min(group, p.N - n0);
#pragma omp for schedule(static)
      for (int64_t sc = 0; sc < ns * p.C; ++sc) {  // (sample, channel) planes
        const T* src = x + (n0 * p.C + sc) * p.in_plane();
        T* dst = xpad + sc * plane;
        // one zero fill per plane, then the rows: small images' rows are too short for three
        // library calls each
        std::memset(dst, 0, sizeof(T) * size_t(plane));
        for (int64_t h = 0; h < p.H; ++h)
          std::memcpy(dst + (p.ph + h) * Wp + p.pw, src + h * p.W, sizeof(T) * size_t(p.W));
      }
#pragma omp for schedule(static)
      for (int64_t sj = 0; sj < ns * panels; ++sj) {  // (sample, panel)
        const int64_t s = sj / panels, jr = sj % panels, chs = std::min(nr, p.K - jr * nr);
        const T* dy_n = dy + (n0 + s) * p.K * P;
        T* panel = dyt + (jr * group + s) * P * nr;
        const T* src = dy_n + jr * nr * P;
        for (int64_t q = 0; q < P; ++q) {  // written in order; the nr channel rows read in step
          T* out = panel + q * nr;
          for (int64_t j = 0; j < chs; ++j) out[j] = src[j * P + q];
          for (int64_t j = chs; j < nr; ++j) out[j] = T(0);
        }
      }
      // the tap-row tiles split between the threads; samples and positions in order
#pragma omp for schedule(static)
      for (int64_t t = 0; t < tiles; ++t) {
        for (int64_t i = 0; i < mr; ++i) ptrs[size_t(i)] = xpad + rows[size_t(t * mr + i)];
        for (int64_t q0 = 0; q0 < ns * P; q0 += kKc) {
          const int64_t kc = std::min(kKc, ns * P - q0);
          const bool first = n0 == 0 && q0 == 0;
          for (int64_t jr = 0; jr < panels; ++jr)
            kr.fn(kc, dyt + (jr * group * P + q0) * nr, ptrs.data(), offs.data() + q0,
                  acc + (t * panels + jr) * mr * nr, first);
        }
      }
    }
    // dw[k][r] from the tiles' dw^T
#pragma omp for schedule(static)
    for (int64_t k = 0; k < p.K; ++k) {
      const T* src = acc + k / nr * mr * nr + k % nr;
      T* dst = dw + k * R;
      for (int64_t r = 0; r < R; ++r) dst[r] = src[(r / mr * panels) * mr * nr + r % mr * nr];
    }
  }
}

template void conv2d_weight_grad_posrows<float>(const Conv2dParams&, const float*, const float*, float*);
template void conv2d_weight_grad_posrows<double>(const Conv2dParams&, const double*, const double*, double*);

template void conv2d_forward_posrows<float>(const Conv2dParams&, const float*, const float*, const float*, float*);
template void conv2d_forward_posrows<double>(const Conv2dParams&, const double*, const double*, const double*, double*);

}  // namespace dk::cpu
