// LSTM forward and backward over a whole sequence: the GEMMs that cover all T steps at once
// (input projection; dX, dW_ih, dW_hh) run once, only the recurrent GEMM and the fused
// pointwise step run inside the time loop.
#include "cpu/lstm.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/lstm_pointwise.h"
#include "cpu/parallel.h"

namespace dk::cpu {

namespace {

// How one step's B x H pointwise work is cut into (row, column-chunk) items: whole rows when
// there are enough of them, otherwise column chunks (multiples of 16 so vectors stay whole).
struct StepSplit {
  int64_t chunk, per_row, items;
  StepSplit(int64_t B, int64_t H, int threads) {
    const int64_t want = std::max<int64_t>(1, (4 * threads + B - 1) / B);
    per_row = std::min<int64_t>(want, std::max<int64_t>(1, H / 64));
    chunk = ((H + per_row - 1) / per_row + 15) / 16 * 16;
    per_row = (H + chunk - 1) / chunk;
    items = B * per_row;
  }
};

// Pointwise work below this many elements per step runs on one thread (a fork costs more).
constexpr int64_t kParallelPointwise = 4096;

template <typename T>
std::unique_ptr<T[]> scratch(int64_t n) {
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(std::max<int64_t>(n, 1))]);
}

}  // namespace

template <typename T>
void lstm_forward(const LstmParams& p, const T* x, const T* h0, const T* c0, const T* w_ih, const T* w_hh,
                  const T* b_ih, const T* b_hh, T* y, T* hT, T* cT, T* gates, T* hs, T* cs) {
  const int64_t B = p.B, H = p.H, G = p.G(), BH = B * H;
  const bool save = hs != nullptr;
  const LstmPointwise<T>& pw = lstm_pointwise<T>();

  // Input projection of every step at once; the bias is added in the pointwise step.
  gemm<T>(false, true, p.rows(), G, p.I, T(1), x, p.I, w_ih, p.I, T(0), gates, G);

  std::vector<T> bias(G, T(0)), zeros(H, T(0));
  for (int64_t k = 0; k < G; ++k) bias[k] = (b_ih ? b_ih[k] : T(0)) + (b_hh ? b_hh[k] : T(0));
  if (save) {
    for (int64_t k = 0; k < BH; ++k) hs[k] = h0 ? h0[k] : T(0);
    for (int64_t k = 0; k < BH; ++k) cs[k] = c0 ? c0[k] : T(0);
  }
  // Without a context the cell state lives in two ping-pong buffers (never in place, so the
  // pointwise loop's pointers do not alias).
  auto cbuf = scratch<T>(save ? 0 : 2 * BH);

  const StepSplit split(B, H, num_threads());
  for (int64_t t = 0; t < p.T; ++t) {
    T* g_t = gates + t * B * G;
    const T* h_prev = t == 0 ? h0 : y + (t - 1) * BH;
    if (h_prev) gemm<T>(false, true, B, G, H, T(1), h_prev, H, w_hh, H, T(1), g_t, G);

    const T* c_prev = t == 0 ? c0 : (save ? cs + t * BH : cbuf.get() + ((t - 1) % 2) * BH);
    T* c_out = save ? cs + (t + 1) * BH : (t == p.T - 1 ? cT : cbuf.get() + (t % 2) * BH);
    T* h_out = y + t * BH;
    T* h_keep = (save && t + 1 < p.T) ? hs + (t + 1) * BH : nullptr;
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (BH >= kParallelPointwise)
    for (int64_t it = 0; it < split.items; ++it) {
      const int64_t b = it / split.per_row;
      const int64_t j0 = (it % split.per_row) * split.chunk, j1 = std::min(H, j0 + split.chunk);
      const T* cp = c_prev ? c_prev + b * H : zeros.data();
      pw.forward(H, j0, j1, g_t + b * G, bias.data(), cp, c_out + b * H, h_out + b * H);
      if (h_keep) std::memcpy(h_keep + b * H + j0, h_out + b * H + j0, sizeof(T) * (j1 - j0));
    }
  }
  std::memcpy(hT, y + (p.T - 1) * BH, sizeof(T) * BH);
  if (save) std::memcpy(cT, cs + p.T * BH, sizeof(T) * BH);
}

template <typename T>
void lstm_backward(const LstmParams& p, const T* x, const T* w_ih, const T* w_hh, const T* gates, const T* hs,
                   const T* cs, const T* dy, const T* dhT, const T* dcT, T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh,
                   T* db) {
  const int64_t B = p.B, H = p.H, G = p.G(), BH = B * H, TB = p.rows();
  const LstmPointwise<T>& pw = lstm_pointwise<T>();

  // dgates of every step, kept so the weight gradients are single GEMMs over all T*B rows.
  auto dgates = scratch<T>(TB * G);
  auto dh_rec = scratch<T>(BH);     // dL/dh_{t} arriving through the recurrence (from step t+1)
  auto dc_buf = scratch<T>(2 * BH); // dL/dc ping-pong between steps
  std::vector<T> zeros(H, T(0));
  auto row = [&](const T* base, int64_t b) { return base ? base + b * H : zeros.data(); };

  const StepSplit split(B, H, num_threads());
  for (int64_t t = p.T - 1; t >= 0; --t) {
    const bool last = t == p.T - 1;
    const T* act = gates + t * B * G;
    T* dg_t = dgates.get() + t * B * G;
    const T* dy_t = dy ? dy + t * BH : nullptr;
    const T* dh_next = last ? dhT : dh_rec.get();
    const T* dc_next = last ? dcT : dc_buf.get() + ((t + 1) % 2) * BH;
    T* dc_prev = (t == 0 && dc0) ? dc0 : dc_buf.get() + (t % 2) * BH;
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (BH >= kParallelPointwise)
    for (int64_t it = 0; it < split.items; ++it) {
      const int64_t b = it / split.per_row;
      const int64_t j0 = (it % split.per_row) * split.chunk, j1 = std::min(H, j0 + split.chunk);
      pw.backward(H, j0, j1, act + b * G, cs + (t + 1) * BH + b * H, cs + t * BH + b * H, row(dy_t, b),
                  row(dh_next, b), row(dc_next, b), dg_t + b * G, dc_prev + b * H);
    }
    // dh_{t-1} = dgates_t W_hh (the last one is dh0, skipped when nobody asked for it).
    T* dh_out = t > 0 ? dh_rec.get() : dh0;
    if (dh_out) gemm<T>(false, false, B, H, G, T(1), dg_t, G, w_hh, H, T(0), dh_out, H);
  }

  // One GEMM each over all steps.
  gemm<T>(false, false, TB, p.I, G, T(1), dgates.get(), G, w_ih, p.I, T(0), dx, p.I);
  gemm<T>(true, false, G, p.I, TB, T(1), dgates.get(), G, x, p.I, T(0), dw_ih, p.I);
  gemm<T>(true, false, G, H, TB, T(1), dgates.get(), G, hs, H, T(0), dw_hh, H);

  if (db) {
    // Column sums of dgates: each thread owns a block of columns and walks all rows.
    const int64_t blk = 64, nblk = (G + blk - 1) / blk;
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (TB * G >= 65536)
    for (int64_t cb = 0; cb < nblk; ++cb) {
      const int64_t k0 = cb * blk, k1 = std::min(G, k0 + blk);
      T acc[64] = {};
      for (int64_t r = 0; r < TB; ++r) {
        const T* src = dgates.get() + r * G;
        for (int64_t k = k0; k < k1; ++k) acc[k - k0] += src[k];
      }
      for (int64_t k = k0; k < k1; ++k) db[k] = acc[k - k0];
    }
  }
}

#define DK_INSTANTIATE_LSTM(T)                                                                                   \
  template void lstm_forward<T>(const LstmParams&, const T*, const T*, const T*, const T*, const T*, const T*,   \
                                const T*, T*, T*, T*, T*, T*, T*);                                               \
  template void lstm_backward<T>(const LstmParams&, const T*, const T*, const T*, const T*, const T*, const T*, \
                                 const T*, const T*, const T*, T*, T*, T*, T*, T*, T*);
DK_INSTANTIATE_LSTM(float)
DK_INSTANTIATE_LSTM(double)
#undef DK_INSTANTIATE_LSTM

}  // namespace dk::cpu
