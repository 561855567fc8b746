// 1x1 convolution with a stride or padding by gather + GEMM (conv2d_pointwise_gather.h).
#include "cpu/conv2d/conv2d_pointwise_gather.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/common/parallel.h"
#include "cpu/conv2d/conv2d_im2col.h"
#include "cpu/conv2d/conv2d_phase_rows.h"
#include "cpu/conv2d/conv2d_scratch.h"
#include "cpu/gemm/gemm.h"

namespace dk::cpu {

namespace {

// Elements of one gathered matrix: bands of output rows keep it about this size (as im2col's).
constexpr int64_t kGatherBudget = int64_t(1) << 18;

// col[c][(oh - oh0)*Wo + ow] = x_n[c][oh*sh - ph][ow*sw - pw] (0 in the padding), channels [c0, c1).
template <typename T>
void gather(const Conv2dParams& p, const T* x_n, int64_t oh0, int64_t oh1, int64_t c0, int64_t c1, T* col, int64_t ld) {
  int64_t lo, hi;  // output columns inside the input
  valid_ow(p, 0, lo, hi);
  const PhaseRows<T>& rows = PhaseRows<T>::get();
  for (int64_t c = c0; c < c1; ++c) {
    const T* xc = x_n + c * p.in_plane();
    T* row = col + c * ld;
    for (int64_t oh = oh0; oh < oh1; ++oh, row += p.Wo) {
      const int64_t ih = oh * p.sh - p.ph;
      if (ih < 0 || ih >= p.H || hi == lo) {
        std::fill(row, row + p.Wo, T(0));
        continue;
      }
      const T* xr = xc + ih * p.W + lo * p.sw - p.pw;
      std::fill(row, row + lo, T(0));
      if (p.sw == 1)
        std::memcpy(row + lo, xr, sizeof(T) * size_t(hi - lo));
      else if (p.sw == 2)  // the even columns of 2*(hi - lo) - 1 values: a vector split per ISA
        rows.split2(xr, 2 * (hi - lo) - 1, row + lo, nullptr);
      else
        for (int64_t ow = lo; ow < hi; ++ow) row[ow] = xr[(ow - lo) * p.sw];
      std::fill(row + hi, row + p.Wo, T(0));
    }
  }
}

}  // namespace

template <typename T>
void conv2d_forward_pointwise_gather(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  const int64_t P = p.out_plane(), C = p.C, kin = C + (b ? 1 : 0);
  // [w | b]: K x (C + 1)
  std::vector<T> wb;
  const T* a = w;
  if (b) {
    wb.resize(size_t(p.K * kin));
    for (int64_t k = 0; k < p.K; ++k) {
      std::copy(w + k * C, w + (k + 1) * C, wb.begin() + k * kin);
      wb[size_t(k * kin + C)] = b[k];
    }
    a = wb.data();
  }
  const int64_t rows = std::clamp<int64_t>(kGatherBudget / std::max<int64_t>(1, kin * p.Wo), 1, p.Ho);
  const int64_t bands = (p.Ho + rows - 1) / rows, items = p.N * bands;
  const int nt = num_threads();
  const bool threads = threads_for_flops(2.0 * double(p.N * p.K) * double(P * C)) > 1;
  // Item it: sample it / bands, output rows [oh0, oh1), its columns contiguous in y_n from oh0*Wo on.
  auto item = [&](int64_t it, bool par) {
    const int64_t n = it / bands, oh0 = it % bands * rows, oh1 = std::min(p.Ho, oh0 + rows);
    const int64_t cols = (oh1 - oh0) * p.Wo;
    T* col = conv_thread_buffer<T>(kColSlot, size_t(kin * cols));
    const T* x_n = x + n * C * p.in_plane();
    if (b) std::fill(col + C * cols, col + kin * cols, T(1));
#pragma omp parallel num_threads(team(nt)) if (par)
    {
      const int t = omp_get_thread_num(), T_ = omp_get_num_threads();
      gather(p, x_n, oh0, oh1, C * t / T_, C * (t + 1) / T_, col, cols);
    }
    gemm<T>(false, false, p.K, cols, kin, T(1), a, kin, col, cols, T(0), y + n * p.K * P + oh0 * p.Wo, P, par);
  };
  if (threads && items >= nt) {
#pragma omp parallel for schedule(dynamic) num_threads(team(nt))
    for (int64_t it = 0; it < items; ++it) item(it, false);
  } else {
    for (int64_t it = 0; it < items; ++it) item(it, threads);
  }
}

template void conv2d_forward_pointwise_gather<float>(const Conv2dParams&, const float*, const float*, const float*,
                                                     float*);
template void conv2d_forward_pointwise_gather<double>(const Conv2dParams&, const double*, const double*, const double*,
                                                      double*);

}  // namespace dk::cpu
