// conv2d lowered to GEMM.
//   forward:  y_n[K, P] = w[K, CRS] * col_n[CRS, P]          (+ b per row)
//   backward: dw[K, CRS] += dy_n[K, P] * col_n^T             (summed over the batch)
//             dcol[CRS, P] = w^T * dy_n,  dx_n = col2im(dcol)
//             db[k] = sum over n, p of dy_n[k, p]
// P (output positions) is cut into bands of whole output rows so the column matrix of one
// band stays near L2 size: scratch is bounded per thread whatever the batch or image size.
// 1x1 stride-1 unpadded convolutions skip im2col: x_n is already col_n, and dx_n = dcol.
//
// Threads: with at least as many work items (sample, band) as threads, each thread takes
// whole items and runs serial GEMMs on them (no synchronisation inside an item); otherwise
// the items run one after another and the GEMM and im2col inside are parallel.
#include "cpu/conv2d.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/conv2d_im2col.h"
#include "cpu/conv2d_scratch.h"
#include "cpu/conv2d_shifted.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"

namespace dk::cpu {

namespace {

// Output rows per band: the column matrix (CRS x rows*Wo) of about 256K elements.
int64_t band_rows(const Conv2dParams& p) {
  const int64_t budget = int64_t(1) << 18;
  const int64_t per_row = std::max<int64_t>(1, p.crs() * p.Wo);
  return std::clamp<int64_t>(budget / per_row, 1, p.Ho);
}

// Below this many flops, threads cost more than they save.
bool worth_threads(const Conv2dParams& p) {
  return 2.0 * double(p.N) * double(p.K) * double(p.out_plane()) * double(p.crs()) > 2e6 && num_threads() > 1;
}

template <typename T>
void add_bias(const Conv2dParams& p, const T* b, T* y_n, int64_t p0, int64_t pc) {
  for (int64_t k = 0; k < p.K; ++k) {
    T* row = y_n + k * p.out_plane() + p0;
    const T bk = b[k];
    for (int64_t q = 0; q < pc; ++q) row[q] += bk;
  }
}

// One forward item: sample n, output rows [oh0, oh1). `par` lets the GEMM and im2col use threads.
template <typename T>
void forward_item(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y, int64_t n, int64_t oh0,
                  int64_t oh1, bool par) {
  const int64_t P = p.out_plane(), CRS = p.crs();
  const int64_t p0 = oh0 * p.Wo, pc = (oh1 - oh0) * p.Wo;
  const T* x_n = x + n * p.C * p.in_plane();
  T* y_n = y + n * p.K * P;
  const T* col;
  int64_t ldcol;
  if (p.is_pointwise()) {
    col = x_n + p0;
    ldcol = P;
  } else {
    T* buf = conv_thread_buffer<T>(kColSlot, size_t(CRS * pc));
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (par)
    for (int64_t c = 0; c < p.C; ++c) im2col(p, x_n, oh0, oh1, c, c + 1, buf);
    col = buf;
    ldcol = pc;
  }
  gemm<T>(false, false, p.K, pc, CRS, T(1), w, CRS, col, ldcol, T(0), y_n + p0, P, par);
  if (b) add_bias(p, b, y_n, p0, pc);
}

}  // namespace

template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  if (shifted_applies(p)) {
    conv2d_forward_shifted(p, x, w, b, y);
    return;
  }
  const int64_t rows = p.is_pointwise() ? p.Ho : band_rows(p);
  const int64_t bands = (p.Ho + rows - 1) / rows;
  const int64_t items = p.N * bands;
  const int nt = num_threads();
  if (worth_threads(p) && items >= nt) {
#pragma omp parallel for schedule(dynamic) num_threads(nt)
    for (int64_t it = 0; it < items; ++it) {
      const int64_t n = it / bands, oh0 = it % bands * rows;
      forward_item(p, x, w, b, y, n, oh0, std::min(p.Ho, oh0 + rows), false);
    }
  } else {
    const bool par = worth_threads(p);
    for (int64_t it = 0; it < items; ++it) {
      const int64_t n = it / bands, oh0 = it % bands * rows;
      forward_item(p, x, w, b, y, n, oh0, std::min(p.Ho, oh0 + rows), par);
    }
  }
}

namespace {

// db[k] = sum of dy over batch and positions (accumulated in double for float inputs).
template <typename T>
void bias_grad(const Conv2dParams& p, const T* dy, T* db) {
  const int64_t P = p.out_plane();
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (p.N * p.K * P > (1 << 15))
  for (int64_t k = 0; k < p.K; ++k) {
    double s = 0.0;
    for (int64_t n = 0; n < p.N; ++n) {
      const T* row = dy + (n * p.K + k) * P;
      T part = T(0);  // a short vectorisable run per row, then widened
      for (int64_t q = 0; q < P; ++q) part += row[q];
      s += double(part);
    }
    db[k] = T(s);
  }
}

// One sample's backward: dw_acc += dy_n * col_n^T; dx_n = col2im(w^T * dy_n).
// `par` lets GEMM, im2col and col2im use threads (then dw_acc is shared, dx_n is ours).
template <typename T>
void backward_sample(const Conv2dParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw_acc, int64_t n,
                     bool par) {
  const int64_t P = p.out_plane(), CRS = p.crs();
  const T* x_n = x + n * p.C * p.in_plane();
  const T* dy_n = dy + n * p.K * P;
  if (p.is_pointwise()) {
    if (dw_acc) gemm<T>(false, true, p.K, p.C, P, T(1), dy_n, P, x_n, P, T(1), dw_acc, p.C, par);
    if (dx) gemm<T>(true, false, p.C, P, p.K, T(1), w, p.C, dy_n, P, T(0), dx + n * p.C * P, P, par);
    return;
  }
  T* dx_n = dx ? dx + n * p.C * p.in_plane() : nullptr;
  if (dx_n) std::memset(dx_n, 0, sizeof(T) * p.C * p.in_plane());
  const int64_t rows = band_rows(p);
  for (int64_t oh0 = 0; oh0 < p.Ho; oh0 += rows) {
    const int64_t oh1 = std::min(p.Ho, oh0 + rows);
    const int64_t p0 = oh0 * p.Wo, pc = (oh1 - oh0) * p.Wo;
    if (dw_acc) {
      T* col = conv_thread_buffer<T>(kColSlot, size_t(CRS * pc));
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (par)
      for (int64_t c = 0; c < p.C; ++c) im2col(p, x_n, oh0, oh1, c, c + 1, col);
      gemm<T>(false, true, p.K, CRS, pc, T(1), dy_n + p0, P, col, pc, T(1), dw_acc, CRS, par);
    }
    if (dx_n) {
      T* dcol = conv_thread_buffer<T>(kDcolSlot, size_t(CRS * pc));
      gemm<T>(true, false, CRS, pc, p.K, T(1), w, CRS, dy_n + p0, P, T(0), dcol, pc, par);
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (par)
      for (int64_t c = 0; c < p.C; ++c) col2im_add(p, dcol, oh0, oh1, c, c + 1, dx_n);
    }
  }
}

// For stride 1, dx is itself a stride-1 convolution: of dy, padded by (dilated extent - 1 -
// padding), with the weights flipped in (i, j) and transposed to (C, K, kh, kw). That runs on
// the shifted GEMM with no col2im. Needs padding <= dilated extent - 1 on both axes.
bool dx_as_conv(const Conv2dParams& p) {
  return shifted_applies(p) && p.ph <= p.dh * (p.kh - 1) && p.pw <= p.dw * (p.kw - 1);
}

template <typename T>
void dx_by_transposed_conv(const Conv2dParams& p, const T* w, const T* dy, T* dx) {
  std::vector<T> wt(size_t(p.K * p.crs()));
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j)
          wt[((c * p.K + k) * p.kh + (p.kh - 1 - i)) * p.kw + (p.kw - 1 - j)] = w[((k * p.C + c) * p.kh + i) * p.kw + j];
  Conv2dParams q{p.N, p.K, p.Ho, p.Wo, p.C, p.kh, p.kw, p.H, p.W, 1, 1,
                 p.dh * (p.kh - 1) - p.ph, p.dw * (p.kw - 1) - p.pw, p.dh, p.dw};
  conv2d_forward_shifted(q, dy, wt.data(), static_cast<const T*>(nullptr), dx);
}

}  // namespace

template <typename T>
void conv2d_backward(const Conv2dParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  if (db) bias_grad(p, dy, db);
  if (dx && dx_as_conv(p)) {
    dx_by_transposed_conv(p, w, dy, dx);
    dx = nullptr;  // done; the loop below computes dw only
  }
  if (!dx && !dw) return;
  const int64_t wsize = p.K * p.crs();
  const int nt = num_threads();
  if (worth_threads(p) && p.N >= nt) {
    // Samples across threads; each thread sums its dw into a private copy, reduced at the end.
    std::vector<T> acc(dw ? size_t(nt) * size_t(wsize) : 0, T(0));
#pragma omp parallel num_threads(nt)
    {
      T* mine = dw ? acc.data() + size_t(omp_get_thread_num()) * size_t(wsize) : nullptr;
#pragma omp for schedule(dynamic)
      for (int64_t n = 0; n < p.N; ++n) backward_sample(p, x, w, dy, dx, mine, n, false);
      if (dw) {
#pragma omp for schedule(static)
        for (int64_t e = 0; e < wsize; ++e) {
          T s = T(0);
          for (int t = 0; t < nt; ++t) s += acc[size_t(t) * size_t(wsize) + size_t(e)];
          dw[e] = s;
        }
      }
    }
  } else {
    if (dw) std::fill(dw, dw + wsize, T(0));
    const bool par = worth_threads(p);
    for (int64_t n = 0; n < p.N; ++n) backward_sample(p, x, w, dy, dx, dw, n, par);
  }
}

template void conv2d_forward<float>(const Conv2dParams&, const float*, const float*, const float*, float*);
template void conv2d_forward<double>(const Conv2dParams&, const double*, const double*, const double*, double*);
template void conv2d_backward<float>(const Conv2dParams&, const float*, const float*, const float*, float*, float*,
                                     float*);
template void conv2d_backward<double>(const Conv2dParams&, const double*, const double*, const double*, double*,
                                      double*, double*);

}  // namespace dk::cpu
