// conv2d lowered to GEMM. The lowerings, chosen per shape (and per gradient; conv2d_plan names them):
//  * Winograd F(4x4, 3x3) / F(2x2, 5x5) (conv2d_winograd.h) for stride-1 3x3 / 5x5 with enough
//    channels: forward, dx as a transposed convolution, and dw; finite inputs only. Grouped
//    (1 < G < C) 3x3: forward and dx per group, in place (conv2d_winograd_grouped.h), and dw by the
//    same weight gradient, groups as its outer dimension.
//  * positions as rows (conv2d_posrows.h): the forward of stride-2 convolutions with C, K >= 16:
//    output positions as the GEMM's rows, broadcast from padded input rows; their dw with the roles
//    turned (taps as rows, positions as the inner dimension) where the output has >= 128 positions
//    or the input >= 128 channels.
//  * shifted GEMM (conv2d_shifted_plan.h), the default for strides <= 8: no im2col matrix at all.
//    Forward; dw (K >= 16, finite x); dx as a transposed convolution (stride 1, C >= 4) or as
//    w^T dy added back contiguously in the phase-split space (other strides); finite w for dx.
//  * 1x1, stride 1, no padding: x_n already is the column matrix, dx_n = w^T dy_n.
//  * 1x1 with a stride or padding, forward on outputs of >= 256 positions: x gathered at the
//    strided positions, then the packed GEMM (conv2d_pointwise_gather.h).
//  * im2col + GEMM (here): small outputs, where the shifted GEMM's dropped columns would cost
//    more, strides > 8, few output channels for dw, and non-finite x (dw) or w (dx), where the
//    shifted paths' products with padding zeros (0 * Inf = NaN) would differ from the true sum.
//    Whole small images lower through zero-padded planes instead of row by row (conv2d_plane.h).
// im2col + GEMM, with col[CRS, cols] the column matrix of a group of samples or a band of rows:
//   forward:  y[K, cols] = w[K, CRS] * col                                    (+ b per row)
//   backward: dw[K, CRS] += dy[K, cols] * col^T;  dcol = w^T * dy,  dx = col2im(dcol)
//             db[k] = sum over n, p of dy_n[k, p]
// Large outputs are cut into bands of whole output rows, small ones are grouped several samples
// per GEMM (so the GEMM is not a thin strip): either way the column matrix stays around 256K
// elements per thread, whatever the batch or image size.
//
// Threads: with at least as many work items as threads, each thread takes whole items and runs
// serial GEMMs on them (no synchronisation inside an item); otherwise the items run one after
// another and the GEMM, im2col and col2im inside are parallel.
#include "cpu/conv2d/conv2d.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/common/parallel.h"
#include "cpu/conv2d/conv2d_depthwise.h"
#include "cpu/conv2d/conv2d_im2col.h"
#include "cpu/conv2d/conv2d_plane.h"
#include "cpu/conv2d/conv2d_pointwise_gather.h"
#include "cpu/conv2d/conv2d_posrows.h"
#include "cpu/conv2d/conv2d_scratch.h"
#include "cpu/conv2d/conv2d_shifted.h"
#include "cpu/conv2d/conv2d_winograd.h"
#include "cpu/conv2d/conv2d_winograd_grouped.h"
#include "cpu/gemm/gemm.h"
#include "cpu/gemm/gemm_kernels.h"

namespace dk::cpu {

namespace {

constexpr int64_t kColBudget = int64_t(1) << 18;  // elements of one column matrix
constexpr int64_t kMinCols = 256;                 // below this, group samples into one GEMM

bool worth_threads(const Conv2dParams& p) {
  return threads_for_flops(2.0 * double(p.N) * double(p.K) * double(p.out_plane()) * double(p.crs())) > 1;
}

// How the im2col path cuts the work: groups of nb samples (nb > 1 only with whole images), or
// one sample in bands of `rows` output rows.
struct Plan {
  int64_t nb, rows;
  bool direct;  // 1x1 stride 1 unpadded, one sample per GEMM: x_n is the column matrix
};

Plan make_plan(const Conv2dParams& p) {
  const int64_t P = p.out_plane(), CRS = p.crs();
  Plan pl{1, p.Ho, false};
  if (P >= kMinCols) {
    if (!p.is_pointwise()) pl.rows = std::clamp<int64_t>(kColBudget / std::max<int64_t>(1, CRS * p.Wo), 1, p.Ho);
    pl.direct = p.is_pointwise();
    return pl;
  }
  int64_t nb = std::max<int64_t>(1, 2 * kMinCols / P);
  nb = std::min(nb, std::max<int64_t>(1, kColBudget / std::max<int64_t>(1, CRS * P)));
  nb = std::max<int64_t>(1, std::min(nb, p.N));
  const int nt = num_threads();
  if (worth_threads(p) && (p.N + nb - 1) / nb < nt) nb = std::max<int64_t>(1, (p.N + nt - 1) / nt);
  pl.nb = nb;
  return pl;
}

// Column matrix of samples [n0, n0+nb), output rows [oh0, oh1): sample s at column s*pc.
template <typename T>
void im2col_group(const Conv2dParams& p, const T* x, int64_t n0, int64_t nb, int64_t oh0, int64_t oh1, T* col,
                  bool par) {
  const int64_t pc = (oh1 - oh0) * p.Wo, ld = nb * pc;
#pragma omp parallel for collapse(2) schedule(static) num_threads(team(num_threads())) if (par)
  for (int64_t s = 0; s < nb; ++s)
    for (int64_t c = 0; c < p.C; ++c)
      im2col(p, x + (n0 + s) * p.C * p.in_plane(), oh0, oh1, c, c + 1, col + s * pc, ld);
}

// Forward of one item; `par` lets the GEMM and im2col use threads.
template <typename T>
void forward_item(const Conv2dParams& p, const Plan& pl, const T* x, const T* w, const T* b, T* y, int64_t n0,
                  int64_t nb, int64_t oh0, int64_t oh1, bool par) {
  const int64_t P = p.out_plane(), CRS = p.crs();
  const int64_t p0 = oh0 * p.Wo, pc = (oh1 - oh0) * p.Wo, cols = nb * pc;
  const T* col;
  int64_t ldcol;
  if (pl.direct) {
    col = x + n0 * p.C * P + p0;
    ldcol = P;
  } else {
    T* buf = conv_thread_buffer<T>(kColSlot, size_t(CRS * cols));
    im2col_group(p, x, n0, nb, oh0, oh1, buf, par);
    col = buf;
    ldcol = cols;
  }
  if (nb == 1) {
    T* y_n = y + n0 * p.K * P;
    gemm<T>(false, false, p.K, pc, CRS, T(1), w, CRS, col, ldcol, T(0), y_n + p0, P, par);
    if (b)
      for (int64_t k = 0; k < p.K; ++k)
        for (int64_t q = 0; q < pc; ++q) y_n[k * P + p0 + q] += b[k];
    return;
  }
  // several whole samples: GEMM into [K, nb*P], then each sample's block to its place
  T* yt = conv_thread_buffer<T>(kDcolSlot, size_t(p.K * cols));
  gemm<T>(false, false, p.K, cols, CRS, T(1), w, CRS, col, ldcol, T(0), yt, cols, par);
  for (int64_t s = 0; s < nb; ++s)
    for (int64_t k = 0; k < p.K; ++k) {
      const T* src = yt + k * cols + s * P;
      T* dst = y + ((n0 + s) * p.K + k) * P;
      const T bk = b ? b[k] : T(0);
      for (int64_t q = 0; q < P; ++q) dst[q] = src[q] + bk;
    }
}

// Groups other than depthwise: stride-1 3x3 groups with enough channels take the grouped Winograd
// (conv2d_winograd_grouped.h: forward and dx, channels read in place; dw: the Winograd weight
// gradient of conv2d_winograd.h, groups as its outer dimension); otherwise dw runs on the
// shifted GEMM over group views, and the forward and dx treat each group as an ordinary
// convolution of its C/G channels over gathered copies (those lowerings take whole NCHW batches).
// One group's params:
Conv2dParams group_params(const Conv2dParams& p) {
  Conv2dParams q = p;
  q.C = p.C / p.G;
  q.K = p.K / p.G;
  q.G = 1;
  return q;
}

// dst[n] = src[n][c0 .. c0 + cn) (planes of `plane` elements, src has cs channels per sample), or back.
template <typename T>
void copy_channels(const T* src, int64_t cs, int64_t c0, int64_t cn, int64_t N, int64_t plane, T* dst, int64_t cd,
                   int64_t d0) {
#pragma omp parallel for schedule(static) num_threads(team(threads_for_bytes(2.0 * sizeof(T) * double(N * cn * plane))))
  for (int64_t n = 0; n < N; ++n)
    std::memcpy(dst + (n * cd + d0) * plane, src + (n * cs + c0) * plane, sizeof(T) * size_t(cn * plane));
}

// sum of v[0, n) in kLanes independent partial sums: a single running sum is one add per
// latency (4 cycles) because the compiler may not reorder float adds; lanes vectorise.
constexpr int kLanes = 16;
template <typename T>
T sum_lanes(const T* v, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += v[i + l];
  for (; i < n; ++i) acc[0] += v[i];
  T s = T(0);
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// True when x holds no Inf/NaN. The shifted weight gradient multiplies dropped columns' inputs by
// zero, which turns an Inf there into NaN; with non-finite inputs the im2col path is used instead.
template <typename T>
bool all_finite(const T* x, int64_t n) {
  constexpr int64_t kBlock = 4096;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  T acc = T(0);
#pragma omp parallel for reduction(+ : acc) schedule(static) num_threads(team(threads_for_bytes(sizeof(T) * double(n))))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i0 = b * kBlock, m = std::min(kBlock, n - i0);
    T zeros[kLanes] = {};  // 0 * finite = 0, 0 * Inf = NaN, NaN stays
    int64_t i = 0;
    for (; i + kLanes <= m; i += kLanes)
      for (int l = 0; l < kLanes; ++l) zeros[l] += x[i0 + i + l] * T(0);
    for (; i < m; ++i) zeros[0] += x[i0 + i] * T(0);
    for (int l = 0; l < kLanes; ++l) acc += zeros[l];
  }
  return acc == T(0);
}

}  // namespace

template <typename T>
void conv2d_forward(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  if (p.N == 0) return;  // an empty batch has no output (and the plans divide by N)
  if (p.is_depthwise()) return conv2d_depthwise_forward(p, x, w, b, y);
  if (p.G > 1 && winograd_grouped_pays(p, sizeof(T)) && all_finite(x, p.N * p.C * p.in_plane()) &&
      all_finite(w, p.K * p.crs())) {
    conv2d_forward_winograd_grouped(p, x, w, b, y);
    return;
  }
  if (p.G > 1) {
    const Conv2dParams q = group_params(p);
    std::vector<T> xg(size_t(p.N * q.C * p.in_plane())), yg(size_t(p.N * q.K * p.out_plane()));
    for (int64_t g = 0; g < p.G; ++g) {
      copy_channels(x, p.C, g * q.C, q.C, p.N, p.in_plane(), xg.data(), q.C, 0);
      conv2d_forward(q, xg.data(), w + g * q.K * q.crs(), b ? b + g * q.K : b, yg.data());
      copy_channels(yg.data(), q.K, 0, q.K, p.N, p.out_plane(), y, p.K, g * q.K);
    }
    return;
  }
  if (winograd_pays(p, sizeof(T)) && all_finite(x, p.N * p.C * p.in_plane()) && all_finite(w, p.K * p.crs())) {
    conv2d_forward_winograd(p, x, w, b, y);
    return;
  }
  if (pointwise_gather_applies(p)) {
    conv2d_forward_pointwise_gather(p, x, w, b, y);
    return;
  }
  if (posrows_applies(p)) {
    conv2d_forward_posrows(p, x, w, b, y);
    return;
  }
  if (shifted_applies(p)) {
    conv2d_forward_shifted(p, x, w, b, y);
    return;
  }
  const Plan pl = make_plan(p);
  const int64_t bands = (p.Ho + pl.rows - 1) / pl.rows, groups = (p.N + pl.nb - 1) / pl.nb;
  const int64_t items = groups * bands;
  const int nt = num_threads();
  auto item = [&](int64_t it, bool par) {
    const int64_t g = it / bands, oh0 = it % bands * pl.rows;
    const int64_t n0 = g * pl.nb, nb = std::min(pl.nb, p.N - n0);
    forward_item(p, pl, x, w, b, y, n0, nb, oh0, std::min(p.Ho, oh0 + pl.rows), par);
  };
  if (worth_threads(p) && items >= nt) {
#pragma omp parallel for schedule(dynamic) num_threads(team(nt))
    for (int64_t it = 0; it < items; ++it) item(it, false);
  } else {
    for (int64_t it = 0; it < items; ++it) item(it, worth_threads(p));
  }
}

namespace {

// db[k] = sum of dy over batch and positions (per row in lanes, then accumulated in double).
template <typename T>
void bias_grad(const Conv2dParams& p, const T* dy, T* db) {
  const int64_t P = p.out_plane();
#pragma omp parallel for schedule(static) num_threads(team(threads_for_bytes(sizeof(T) * double(p.N * p.K * P))))
  for (int64_t k = 0; k < p.K; ++k) {
    double s = 0.0;
    for (int64_t n = 0; n < p.N; ++n) s += double(sum_lanes(dy + (n * p.K + k) * P, P));
    db[k] = T(s);
  }
}

// Backward of samples [n0, n0+nb): dw_acc += dy * col^T; dx = col2im(w^T * dy).
// `par` lets GEMM, im2col and col2im use threads (dw_acc is then shared; dx of these samples is ours).
template <typename T>
void backward_group(const Conv2dParams& p, const Plan& pl, const T* x, const T* w, const T* dy, T* dx, T* dw_acc,
                    int64_t n0, int64_t nb, bool par) {
  const int64_t P = p.out_plane(), CRS = p.crs();
  if (pl.direct) {  // one sample, whole image: x_n is col_n, and dx_n = dcol
    const T* x_n = x + n0 * p.C * P;
    const T* dy_n = dy + n0 * p.K * P;
    if (dw_acc) gemm<T>(false, true, p.K, p.C, P, T(1), dy_n, P, x_n, P, T(1), dw_acc, p.C, par);
    if (dx) gemm<T>(true, false, p.C, P, p.K, T(1), w, p.C, dy_n, P, T(0), dx + n0 * p.C * P, P, par);
    return;
  }
  if (dx) std::memset(dx + n0 * p.C * p.in_plane(), 0, sizeof(T) * nb * p.C * p.in_plane());
  for (int64_t oh0 = 0; oh0 < p.Ho; oh0 += pl.rows) {
    const int64_t oh1 = std::min(p.Ho, oh0 + pl.rows);
    const int64_t p0 = oh0 * p.Wo, pc = (oh1 - oh0) * p.Wo, cols = nb * pc;
    // dy of the item as a [K, cols] matrix
    const T* dyb = dy + n0 * p.K * P + p0;
    int64_t lddy = P;
    if (nb > 1) {
      T* g = conv_thread_buffer<T>(kGatherSlot, size_t(p.K * cols));
      for (int64_t k = 0; k < p.K; ++k)
        for (int64_t s = 0; s < nb; ++s)
          std::memcpy(g + k * cols + s * P, dy + ((n0 + s) * p.K + k) * P, sizeof(T) * P);
      dyb = g;
      lddy = cols;
    }
    if (dw_acc) {
      T* col = conv_thread_buffer<T>(kColSlot, size_t(CRS * cols));
      im2col_group(p, x, n0, nb, oh0, oh1, col, par);
      gemm<T>(false, true, p.K, CRS, cols, T(1), dyb, lddy, col, cols, T(1), dw_acc, CRS, par);
    }
    if (dx) {
      T* dcol = conv_thread_buffer<T>(kDcolSlot, size_t(CRS * cols));
      gemm<T>(true, false, CRS, cols, p.K, T(1), w, CRS, dyb, lddy, T(0), dcol, cols, par);
#pragma omp parallel for collapse(2) schedule(static) num_threads(team(num_threads())) if (par)
      for (int64_t s = 0; s < nb; ++s)
        for (int64_t c = 0; c < p.C; ++c)
          col2im_add(p, dcol + s * pc, oh0, oh1, c, c + 1, dx + (n0 + s) * p.C * p.in_plane(), cols);
    }
  }
}

// For stride 1, dx is itself a stride-1 convolution: of dy, padded by (dilated extent - 1 -
// padding), with the weights flipped in (i, j) and transposed to (C, K, kh, kw). That runs on
// the shifted GEMM with no col2im. Needs padding <= dilated extent - 1 on both axes.
Conv2dParams dx_conv_params(const Conv2dParams& p) {
  return {p.N,  p.K, p.Ho, p.Wo, p.C, p.kh, p.kw, p.H, p.W, 1, 1, p.dh * (p.kh - 1) - p.ph, p.dw * (p.kw - 1) - p.pw,
          p.dh, p.dw};
}

bool dx_as_conv(const Conv2dParams& p) {
  // its GEMM has C output rows: with very few, most of each register tile would be padding
  if (p.C < 4) return false;
  if (p.sh != 1 || p.sw != 1 || p.ph > p.dh * (p.kh - 1) || p.pw > p.dw * (p.kw - 1)) return false;
  return shifted_applies(dx_conv_params(p));
}

// Small stride-1 images that dx_as_conv declines (C < 4): im2col through padded planes beats the
// phase scatter's passes per sample (benchmarks/results/training.md, the digits CNN epoch).
bool dx_by_planes(const Conv2dParams& p) {
  if (p.sh != 1 || p.sw != 1 || p.N == 0) return false;
  const Plan pl = make_plan(p);
  return !pl.direct && plane_lowering_applies(p, 0, std::min(p.Ho, pl.rows));
}

template <typename T>
void dx_by_transposed_conv(const Conv2dParams& p, const T* w, const T* dy, T* dx) {
  std::vector<T> wt(size_t(p.K * p.crs()));
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j)
          wt[((c * p.K + k) * p.kh + (p.kh - 1 - i)) * p.kw + (p.kw - 1 - j)] =
              w[((k * p.C + c) * p.kh + i) * p.kw + j];
  const Conv2dParams q = dx_conv_params(p);
  if (winograd_pays(q, sizeof(T)) && all_finite(dy, q.N * q.C * q.in_plane()))
    conv2d_forward_winograd(q, dy, wt.data(), static_cast<const T*>(nullptr), dx);
  else
    conv2d_forward_shifted(q, dy, wt.data(), static_cast<const T*>(nullptr), dx);
}

}  // namespace

template <typename T>
void conv2d_backward(const Conv2dParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  if (p.N == 0) {  // an empty batch: dx is empty, dw and db are sums over nothing (the plans divide by N)
    if (dw) std::fill(dw, dw + p.K * p.crs(), T(0));
    if (db) std::fill(db, db + p.K, T(0));
    return;
  }
  if (p.is_depthwise()) {  // its kernel may sum db from the dy it reads anyway
    if (!conv2d_depthwise_backward(p, x, w, dy, dx, dw, db) && db) bias_grad(p, dy, db);
    return;
  }
  if (db) bias_grad(p, dy, db);
  if (p.G > 1) {  // grouped: Winograd or group views where they apply, each input checked once
    const Conv2dParams q = group_params(p);
    int x_ok = -1, dy_ok = -1;  // unknown, false, true
    const auto x_finite = [&] {
      if (x_ok < 0) x_ok = all_finite(x, p.N * p.C * p.in_plane()) ? 1 : 0;
      return x_ok == 1;
    };
    const auto dy_finite = [&] {
      if (dy_ok < 0) dy_ok = all_finite(dy, p.N * p.K * p.out_plane()) ? 1 : 0;
      return dy_ok == 1;
    };
    // dx by Winograd (finite w and dy: its transforms add them up)
    if (dx && winograd_grouped_pays(winograd_grouped_dx_params(p), sizeof(T)) && all_finite(w, p.K * p.crs()) &&
        dy_finite()) {
      conv2d_input_grad_winograd_grouped(p, w, dy, dx);
      dx = nullptr;  // done
    }
    // dw by Winograd (finite x and dy), else on the shifted GEMM over group views (finite x, as below)
    if (dw && winograd_grouped_dw_pays<T>(p) && x_finite() && dy_finite()) {
      conv2d_weight_grad_winograd(p, x, dy, dw);
      dw = nullptr;  // done
    } else if (dw && shifted_applies(q) && x_finite()) {
      for (int64_t g = 0; g < p.G; ++g)
        conv2d_weight_grad_shifted(q, x + g * q.C * p.in_plane(), dy + g * q.K * p.out_plane(), dw + g * q.K * q.crs(),
                                   p.C * p.in_plane(), p.K * p.out_plane());
      dw = nullptr;  // done
    }
    if (!dx && !dw) return;
  }
  if (p.G > 1) {
    const Conv2dParams q = group_params(p);
    std::vector<T> xg(size_t(p.N * q.C * p.in_plane())), dyg(size_t(p.N * q.K * p.out_plane()));
    std::vector<T> dxg(dx ? xg.size() : 0);
    for (int64_t g = 0; g < p.G; ++g) {
      if (dw) copy_channels(x, p.C, g * q.C, q.C, p.N, p.in_plane(), xg.data(), q.C, 0);  // dx needs no x
      copy_channels(dy, p.K, g * q.K, q.K, p.N, p.out_plane(), dyg.data(), q.K, 0);
      conv2d_backward(q, xg.data(), w + g * q.K * q.crs(), dyg.data(), dx ? dxg.data() : nullptr,
                      dw ? dw + g * q.K * q.crs() : nullptr, static_cast<T*>(nullptr));
      if (dx) copy_channels(dxg.data(), q.C, 0, q.C, p.N, p.in_plane(), dx, p.C, g * q.C);
    }
    return;
  }
  // Both shifted dx paths multiply w by zeros that are not in the true sum (dy's padding, dropped
  // columns): 0 * Inf = NaN, so a non-finite w takes im2col + col2im, which never does.
  const bool w_finite = dx && all_finite(w, p.K * p.crs());
  if (dx && w_finite && dx_as_conv(p)) {
    dx_by_transposed_conv(p, w, dy, dx);
    dx = nullptr;  // done
  } else if (dx && w_finite && shifted_applies(p) && !dx_by_planes(p)) {
    conv2d_input_grad_shifted(p, w, dy, dx);
    dx = nullptr;  // done
  }
  if (dw && posrows_dw_applies(p)) {
    conv2d_weight_grad_posrows(p, x, dy, dw);
    dw = nullptr;  // done
  }
  // For any K, small K too (its tile is padded, but x is read in place: benchmarks/results/conv.md,
  // "Why the conv2d rules").
  if (dw && winograd_dw_pays(p, sizeof(T)) && all_finite(x, p.N * p.C * p.in_plane()) &&
      all_finite(dy, p.N * p.K * p.out_plane())) {
    conv2d_weight_grad_winograd(p, x, dy, dw);
    dw = nullptr;  // done
  }
  if (dw && shifted_applies(p) && all_finite(x, p.N * p.C * p.in_plane())) {
    conv2d_weight_grad_shifted(p, x, dy, dw);
    dw = nullptr;  // done
  }
  if (!dx && !dw) return;
  const Plan pl = make_plan(p);
  const int64_t groups = (p.N + pl.nb - 1) / pl.nb;
  const int64_t wsize = p.K * p.crs();
  const int nt = num_threads();
  if (worth_threads(p) && groups >= nt) {
    // Sample groups in nt slots, each slot summing its dw into a private copy, reduced at the end.
    // Slots, not threads, own the copies: which samples sum where must depend neither on timing nor
    // on the team's size (it shrinks on a busy machine: team() in parallel.h), or dw is not bitwise
    // reproducible run to run.
    std::vector<T> acc(dw ? size_t(nt) * size_t(wsize) : 0, T(0));
#pragma omp parallel num_threads(team(nt))
    {
#pragma omp for schedule(dynamic)
      for (int slot = 0; slot < nt; ++slot) {
        T* mine = dw ? acc.data() + size_t(slot) * size_t(wsize) : nullptr;
        for (int64_t g = groups * slot / nt; g < groups * (slot + 1) / nt; ++g)
          backward_group(p, pl, x, w, dy, dx, mine, g * pl.nb, std::min(pl.nb, p.N - g * pl.nb), false);
      }
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
    for (int64_t g = 0; g < groups; ++g)
      backward_group(p, pl, x, w, dy, dx, dw, g * pl.nb, std::min(pl.nb, p.N - g * pl.nb), par);
  }
}

// The lowering of each pass, from the same predicates the passes above and the shifted paths
// test (finite inputs assumed: non-finite x, w or dy send Winograd and the shifted dw/dx to im2col).
template <typename T>
Conv2dPlan conv2d_plan(const Conv2dParams& p, int nt) {
  if (p.is_depthwise()) return {"depthwise", "depthwise", "depthwise"};
  if (p.G > 1) {  // each group in turn, or all at once by the grouped Winograd
    Conv2dPlan r = conv2d_plan<T>(group_params(p), nt);
    if (winograd_grouped_pays(p, sizeof(T))) r.forward = "winograd";
    if (winograd_grouped_pays(winograd_grouped_dx_params(p), sizeof(T))) r.dx = "winograd";
    if (winograd_grouped_dw_pays<T>(p)) r.dw = "winograd";
    return r;
  }
  Conv2dPlan r{"im2col", "im2col", "im2col"};
  const auto layout = [&](const Conv2dParams& q) {
    const GemmKernel<T>& kr = gemm_kernel<T>();
    return shifted_forward_layout(q, kr.mr, kr.nr, sizeof(T), shifted_workers(q, nt));
  };
  if (p.N > 0 && make_plan(p).direct) r = {"pointwise", "pointwise", "pointwise"};
  if (winograd_pays(p, sizeof(T)))
    r.forward = "winograd";
  else if (pointwise_gather_applies(p))
    r.forward = "pointwise_gather";
  else if (posrows_applies(p))
    r.forward = "posrows";
  else if (shifted_applies(p))
    r.forward = layout(p);
  if (dx_as_conv(p)) {
    const Conv2dParams q = dx_conv_params(p);
    r.dx = winograd_pays(q, sizeof(T)) ? "winograd" : layout(q);
  } else if (shifted_applies(p) && !dx_by_planes(p)) {
    r.dx = "shifted_scatter";
  }
  if (shifted_applies(p)) r.dw = shifted_dw_threaded_gemm(p, nt) ? "shifted_gemm" : "shifted_rows";
  if (winograd_dw_pays(p, sizeof(T))) r.dw = "winograd";
  if (posrows_dw_applies(p)) r.dw = "posrows";
  // im2col of whole small images goes through padded planes (conv2d_plane.h)
  if (p.N > 0 && !make_plan(p).direct && plane_lowering_applies(p, 0, std::min(p.Ho, make_plan(p).rows)))
    for (const char** pass : {&r.forward, &r.dx, &r.dw})
      if (std::string(*pass) == "im2col") *pass = "im2col_planes";
  return r;
}

template Conv2dPlan conv2d_plan<float>(const Conv2dParams&, int);
template Conv2dPlan conv2d_plan<double>(const Conv2dParams&, int);

template void conv2d_forward<float>(const Conv2dParams&, const float*, const float*, const float*, float*);
template void conv2d_forward<double>(const Conv2dParams&, const double*, const double*, const double*, double*);
template void conv2d_backward<float>(const Conv2dParams&, const float*, const float*, const float*, float*, float*,
                                     float*);
template void conv2d_backward<double>(const Conv2dParams&, const double*, const double*, const double*, double*,
                                      double*, double*);

}  // namespace dk::cpu
