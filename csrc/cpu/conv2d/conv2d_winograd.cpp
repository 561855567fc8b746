// Winograd conv2d entry point (picks the kernel copy for the running CPU) and its chooser.
#include "cpu/conv2d/conv2d_winograd.h"

#include "cpu/conv2d/conv2d_winograd_dw_impl.h"
#include "cpu/gemm/gemm_kernels.h"

namespace dk::cpu::DK_WG_NS {
DK_INSTANTIATE_WINOGRAD_ISA(float)
DK_INSTANTIATE_WINOGRAD_ISA(double)
}  // namespace dk::cpu::DK_WG_NS

namespace dk::cpu {

// float32 sums over more channels than this stay direct: the tiles round more than the direct sum,
// the more so the more channels they sum. Worst error seen, in units of the tests' float32
// tolerance (conv.md, "Numerics"): F(4x4, 3x3) 0.6 at 64 channels, 0.84 at 128; F(2x2, 5x5), whose
// tile is smaller, 0.51 at 128, 0.63 at 256, 1.02 at 512.
static int64_t f32_channels(int m) { return m == 4 ? 64 : 128; }

// Cost in multiply-adds' time (constants fitted to 1-thread timings of 22 shapes, conv.md "Winograd
// cost model"): the 36 GEMMs as the micro-kernel runs them (each item's tiles rounded up to its mr
// rows, channels to 16) plus the transforms: 1000 per tile and input channel, 250 per tile and
// output channel, and, once per call (not per sample), 1500 per channel pair for the weights.
// Against kh*kw per output and channel pair directly, with a 1.1x margin (the direct path runs
// near the GEMM's peak on the shapes where the choice is close; small ones it runs slower).
// The weight gradient (F(3x3, 4x4) on 4x4 dy blocks; 5x5 as four shifted 3x3 blocks sharing dy's
// transform): per block the 36 GEMMs (summing over the tiles, so no row rounding) and the input
// transform, once the dy transform (700 per tile and input or output channel: fitted as above to 16
// shapes' dw alone, conv.md "Weight gradient"), and per call and block the sum of the threads'
// products and the output transform (1500 per channel pair); against kh*kw per output and channel
// pair directly, with the same margin.
bool winograd_dw_pays(const Conv2dParams& p, int64_t elem_bytes) {
  if (winograd_tile(p) == 0) return false;
  const auto up = [](int64_t v, int64_t q) { return (v + q - 1) / q * q; };
  const double blocks = p.kh == 5 ? 4.0 : 1.0, tiles = double(p.N) * double((p.Ho + 3) / 4) * double((p.Wo + 3) / 4);
  const double c = double(up(p.C, 16)), k = double(up(p.K, 16));
  const double wino = tiles * (blocks * (36.0 * c * k + 700.0 * c) + 700.0 * k) + blocks * 1500.0 * c * k;
  const double direct = double(p.kh * p.kw) * double(p.N) * double(p.out_plane()) * double(p.C) * double(p.K);
  return 1.1 * wino < direct;
}

bool winograd_pays(const Conv2dParams& p, int64_t elem_bytes) {
  const int m = winograd_tile(p);
  if (m == 0) return false;
  if (elem_bytes == 4 && p.C > f32_channels(m)) return false;
  const int mr = elem_bytes == 4 ? gemm_kernel<float>().mr : gemm_kernel<double>().mr;
  const auto up = [](int64_t v, int64_t q) { return (v + q - 1) / q * q; };
  const int64_t th = (p.Ho + m - 1) / m, tw = (p.Wo + m - 1) / m, rows = winograd_band_rows(th, tw);
  const int64_t bands = (th + rows - 1) / rows, last = th - (bands - 1) * rows;
  const double gemm_rows = double(p.N) * double((bands - 1) * up(rows * tw, mr) + up(last * tw, mr));
  const double tiles = double(p.N) * double(th * tw), c = double(up(p.C, 16)), k = double(up(p.K, 16));
  const double wino = gemm_rows * 36.0 * c * k + tiles * (1000.0 * c + 250.0 * k) + 1500.0 * c * k;
  const double direct = double(p.kh * p.kw) * double(p.N) * double(p.out_plane()) * double(p.C) * double(p.K);
  return 1.1 * wino < direct;
}

template <typename T>
void conv2d_forward_winograd(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  using Fn = void (*)(const Conv2dParams&, const T*, const T*, const T*, T*);
  static const Fn fn = DK_ISA_PICK(Fn, winograd::forward<T>);
  fn(p, x, w, b, y);
}

template <typename T>
void conv2d_weight_grad_winograd(const Conv2dParams& p, const T* x, const T* dy, T* dw) {
  using Fn = void (*)(const Conv2dParams&, const T*, const T*, T*);
  static const Fn fn = DK_ISA_PICK(Fn, winograd::weight_grad<T>);
  fn(p, x, dy, dw);
}

template void conv2d_weight_grad_winograd<float>(const Conv2dParams&, const float*, const float*, float*);
template void conv2d_weight_grad_winograd<double>(const Conv2dParams&, const double*, const double*, double*);
template void conv2d_forward_winograd<float>(const Conv2dParams&, const float*, const float*, const float*, float*);
template void conv2d_forward_winograd<double>(const Conv2dParams&, const double*, const double*, const double*,
                                              double*);

}  // namespace dk::cpu
