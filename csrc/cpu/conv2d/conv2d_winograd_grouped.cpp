// Grouped Winograd conv2d entry points: the chooser, the kernel copy for the running CPU, and dx.
#include "cpu/conv2d/conv2d_winograd_grouped.h"

#include <vector>

#include "cpu/conv2d/conv2d_winograd_grouped_impl.h"

namespace dk::cpu::DK_WG_NS {
DK_INSTANTIATE_WINOGRAD_GROUPED_ISA(float)
DK_INSTANTIATE_WINOGRAD_GROUPED_ISA(double)
}  // namespace dk::cpu::DK_WG_NS

namespace dk::cpu {

// As winograd_pays (conv2d_winograd.h), per group: float32 groups of more than 64 channels stay
// direct (rounding), and the cost in multiply-adds with the transforms priced per tile and channel
// (600 in, 350 out: this kernel's measured times at the GEMM's rate) against the direct 9 per
// output and channel pair, with a 1.2x margin. Measurements: benchmarks/results/conv.md, "Grouped".
bool winograd_grouped_pays(const Conv2dParams& p, int64_t elem_bytes) {
  if (p.G <= 1 || p.is_depthwise() || p.kh != 3 || p.kw != 3 || p.sh != 1 || p.sw != 1 || p.dh != 1 || p.dw != 1)
    return false;
  const int64_t Cg = p.C / p.G, Kg = p.K / p.G;
  if (elem_bytes == 4 && Cg > 64) return false;
  const auto up16 = [](int64_t v) { return double((v + 15) / 16 * 16); };
  const double tiles = double((p.Ho + 3) / 4) * double((p.Wo + 3) / 4);
  const double wino = tiles * (36.0 * up16(Cg) * up16(Kg) + 600.0 * up16(Cg) + 350.0 * up16(Kg));
  const double direct = 9.0 * double(p.out_plane()) * double(Cg) * double(Kg);
  return 1.2 * wino < direct;
}

template <typename T>
void conv2d_forward_winograd_grouped(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  using Fn = void (*)(const Conv2dParams&, const T*, const T*, const T*, T*);
  static const Fn fn = DK_ISA_PICK(Fn, winograd::forward_grouped<T>);
  fn(p, x, w, b, y);
}

template <typename T>
bool winograd_grouped_dw_pays(const Conv2dParams& p) {
  const int64_t cgp = (p.C / std::max<int64_t>(1, p.G) + 15) / 16 * 16, nr = gemm_kernel<T>().nr;
  return winograd_grouped_pays(p, sizeof(T)) && (cgp == nr || 2 * cgp == nr);
}

Conv2dParams winograd_grouped_dx_params(const Conv2dParams& p) {
  Conv2dParams q{p.N, p.K, p.Ho, p.Wo, p.C, p.kh, p.kw, p.H, p.W, 1, 1, 0, 0, 1, 1, 0};
  if (p.kh != 3 || p.kw != 3 || p.sh != 1 || p.sw != 1 || p.dh != 1 || p.dw != 1 || p.ph > 2 || p.pw > 2) return q;
  q.ph = 2 - p.ph;
  q.pw = 2 - p.pw;
  q.G = p.G;
  return q;
}

// dx = the grouped convolution of dy (padded by 2 - padding) with wt[g*Cg + c][k] = w[g*Kg + k][c]
// flipped in both axes.
template <typename T>
void conv2d_input_grad_winograd_grouped(const Conv2dParams& p, const T* w, const T* dy, T* dx) {
  const int64_t Cg = p.C / p.G, Kg = p.K / p.G;
  std::vector<T> wt(size_t(p.K * Cg * 9));
  for (int64_t g = 0; g < p.G; ++g)
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t r = 0; r < 9; ++r)
          wt[size_t((((g * Cg + c) * Kg + k) * 9) + (8 - r))] = w[((g * Kg + k) * Cg + c) * 9 + r];
  conv2d_forward_winograd_grouped(winograd_grouped_dx_params(p), dy, wt.data(), static_cast<const T*>(nullptr), dx);
}

template void conv2d_forward_winograd_grouped<float>(const Conv2dParams&, const float*, const float*, const float*,
                                                     float*);
template void conv2d_forward_winograd_grouped<double>(const Conv2dParams&, const double*, const double*, const double*,
                                                      double*);
template bool winograd_grouped_dw_pays<float>(const Conv2dParams&);
template bool winograd_grouped_dw_pays<double>(const Conv2dParams&);
template void conv2d_input_grad_winograd_grouped<float>(const Conv2dParams&, const float*, const float*, float*);
template void conv2d_input_grad_winograd_grouped<double>(const Conv2dParams&, const double*, const double*, double*);

}  // namespace dk::cpu
