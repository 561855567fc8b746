// LSTM forward and backward over a whole sequence. The GEMMs that can cover all T steps at
// once do (the input projection; [dW_ih | dW_hh]); inside the time loop run the recurrent
// GEMMs with pre-packed weights (lstm_gemm.h) and the fused pointwise step (lstm_pointwise.h).
// dx_t is computed in the loop, beside dh_{t-1}, from the same packed dgates_t: measured
// cheaper than one (T*B x 4H) x (4H x I) GEMM afterwards, which re-packs all of dgates.
// The weight and bias gradients come after the loop from one LSTM-specific GEMM.
#include "cpu/lstm/lstm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/common/parallel.h"
#include "cpu/gemm/gemm.h"
#include "cpu/lstm/lstm_gemm.h"
#include "cpu/lstm/lstm_pointwise.h"
#include "cpu/lstm/lstm_workspace.h"

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

// Threads for the time loop: the whole loop must pay for the region (threads_for), and each step
// (GEMM multiply-adds + pointwise elements) for its two barriers: under 2.5e5 per step, one thread.
int step_threads(int64_t B, int64_t H, int64_t steps) {
  const double work = double(B) * double(H) * (4.0 * double(H) + 64.0);
  return work >= 2.5e5 ? threads_for_flops(2.0 * work * double(steps)) : 1;
}

// Rows of a step depend only on the same rows of the step before (forward: h_t[b] from
// h_t-1[b]; backward: dh_t-1[b] from dgates_t[b]), so when the recurrent GEMM's row panels split
// evenly between the threads, each thread takes a contiguous run of panels and carries those
// batch rows through all T steps alone: no barrier, and every row's gates, states and GEMM
// outputs stay in the cache of the core that uses them. Each thread then reads all of the packed
// weights every step (from L3 where they do not fit its L2), which costs less than the two
// per-step barriers and the cross-core traffic of splitting each step by columns (measured on a
// 2-core Zen 3: split by columns, each thread's pointwise phase took 1.3-1.7x half the 1-thread
// time). RecurrentGemm picks its panel height for this (4-row panels where the kernel's MR rows
// split unevenly: B = 16 on 2 AVX2 threads); uneven splits that remain (B = 17, or long steps)
// keep the per-step split, which balances the tiles.
bool split_by_rows(int64_t panels, int threads) { return threads > 1 && panels % threads == 0; }

// The row panels [i0, i1) thread th of nth owns when split by rows.
void row_run(int64_t panels, int th, int nth, int64_t* i0, int64_t* i1) {
  *i0 = panels * th / nth;
  *i1 = panels * (th + 1) / nth;
}

}  // namespace

template <typename T>
void lstm_forward(const LstmParams& p, const T* x, const T* h0, const T* c0, const T* w_ih, const T* w_hh,
                  const T* b_ih, const T* b_hh, T* y, T* hT, T* cT, T* gates, T* xh, T* cs) {
  const int64_t B = p.B, H = p.H, G = p.G(), BH = B * H, I = p.I, XH = p.I + p.H;
  const bool save = xh != nullptr;
  if (gates == nullptr) gates = lstm_workspace<T>(LstmSlot::Gates, p.rows() * G);  // inference
  const LstmPointwise<T>& pw = lstm_pointwise<T>();

  // Input projection of every step at once; the bias is added in the pointwise step.
  gemm<T>(false, true, p.rows(), G, p.I, T(1), x, p.I, w_ih, p.I, T(0), gates, G);

  std::vector<T> bias(G, T(0)), zeros(G, T(0));
  for (int64_t k = 0; k < G; ++k) bias[k] = (b_ih ? b_ih[k] : T(0)) + (b_hh ? b_hh[k] : T(0));
  if (save) {
    // xh row r = [x_r, h entering that step]: the operand of the backward's one dW GEMM.
#pragma omp parallel for schedule(static) num_threads(team(threads_for_bytes(2.0 * sizeof(T) * double(p.rows() * I))))
    for (int64_t r = 0; r < p.rows(); ++r) std::memcpy(xh + r * XH, x + r * I, sizeof(T) * I);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j) xh[b * XH + I + j] = h0 ? h0[b * H + j] : T(0);
    for (int64_t k = 0; k < BH; ++k) cs[k] = c0 ? c0[k] : T(0);
  }
  // Without a context the cell state lives in two ping-pong buffers (never in place, so the
  // pointwise loop's pointers do not alias).
  T* cbuf = save ? nullptr : lstm_workspace<T>(LstmSlot::State, 2 * BH);

  // The recurrence: one parallel region for all steps; per step the recurrent GEMM (W_hh packed
  // once) into a small buffer that stays in cache, a barrier, the fused pointwise update (which
  // adds that buffer to the projection streaming from memory), a barrier. (Accumulating into
  // the projection inside the GEMM instead made every tile wait on strided cache misses.)
  // With whole rows per work item (by_panel), each item is one row panel of the GEMM's A: its
  // pointwise rows, then that panel of the next step's A packed while in cache, so the GEMM
  // needs no packing pass and no barrier of its own (2 barriers per step instead of 3); and when
  // the panels split evenly between the threads, none (split_by_rows).
  T* rec_buf = lstm_workspace<T>(LstmSlot::Rec, B * G);
  const int nt = step_threads(B, H, p.T);
  RecurrentGemm<T> rec(true, H, B, {{w_hh, H, G}}, nt);
  const StepSplit split(B, H, nt);
  const bool by_panel = split.per_row == 1;
  const int64_t items = by_panel ? rec.m_panels() : split.items, mr = rec.mr();
  const bool by_rows = by_panel && split_by_rows(rec.m_panels(), nt);
  // Work item `it` of step t: its rows' pointwise update, then (by_panel) that row panel of the
  // next step's A packed while in cache.
  auto item = [&](int64_t t, int64_t it) {
    T* g_t = gates + t * B * G;
    const T* h_prev = t == 0 ? h0 : y + (t - 1) * BH;
    const T* c_prev = t == 0 ? c0 : (save ? cs + t * BH : cbuf + ((t - 1) % 2) * BH);
    T* c_out = save ? cs + (t + 1) * BH : (t == p.T - 1 ? cT : cbuf + (t % 2) * BH);
    T* h_out = y + t * BH;
    T* h_keep = (save && t + 1 < p.T) ? xh + (t + 1) * B * XH + I : nullptr;
    const int64_t b0 = by_panel ? it * mr : it / split.per_row, b1 = by_panel ? std::min(B, b0 + mr) : b0 + 1;
    const int64_t j0 = by_panel ? 0 : (it % split.per_row) * split.chunk;
    const int64_t j1 = by_panel ? H : std::min(H, j0 + split.chunk);
    for (int64_t b = b0; b < b1; ++b) {
      const T* cp = c_prev ? c_prev + b * H : zeros.data();
      const T* r = h_prev ? rec_buf + b * G : zeros.data();
      pw.forward(H, j0, j1, g_t + b * G, r, bias.data(), cp, c_out + b * H, h_out + b * H);
      if (h_keep) std::memcpy(h_keep + b * XH + j0, h_out + b * H + j0, sizeof(T) * (j1 - j0));
    }
    if (by_panel && t + 1 < p.T) rec.pack_panel(h_out, H, it);
  };
#pragma omp parallel num_threads(team(nt)) if (nt > 1)
  if (by_rows) {
    int64_t i0, i1;
    row_run(items, omp_get_thread_num(), omp_get_num_threads(), &i0, &i1);
    for (int64_t t = 0; t < p.T; ++t) {
      if (t == 0 && h0)
        for (int64_t i = i0; i < i1; ++i) rec.pack_panel(h0, H, i);
      if (t > 0 || h0) rec.tiles_rows(i0, i1, T(0), {rec_buf, G});
      for (int64_t it = i0; it < i1; ++it) item(t, it);
    }
  } else {
    for (int64_t t = 0; t < p.T; ++t) {
      const T* h_prev = t == 0 ? h0 : y + (t - 1) * BH;
      if (h_prev) {
        if (by_panel && t > 0)
          rec.tiles(T(0), {rec_buf, G});  // h_prev was packed panel by panel in the previous step
        else
          rec.step(h_prev, H, T(0), {rec_buf, G});
      }
#pragma omp for schedule(static)
      for (int64_t it = 0; it < items; ++it) item(t, it);
    }
  }
  std::memcpy(hT, y + (p.T - 1) * BH, sizeof(T) * BH);
  if (save) std::memcpy(cT, cs + p.T * BH, sizeof(T) * BH);
}

template <typename T>
void lstm_backward(const LstmParams& p, const T* xh, const T* w_ih, const T* w_hh, const T* gates, const T* cs,
                   const T* dy, const T* dhT, const T* dcT, T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db) {
  const int64_t B = p.B, H = p.H, G = p.G(), BH = B * H, TB = p.rows(), I = p.I;
  const LstmPointwise<T>& pw = lstm_pointwise<T>();

  // dgates of every step, kept so the weight gradients are single GEMMs over all T*B rows.
  T* dgates = lstm_workspace<T>(LstmSlot::DGates, TB * G);
  T* state = lstm_workspace<T>(LstmSlot::State, 3 * BH);
  T* dh_rec = state;       // dL/dh_t arriving through the recurrence (from step t+1)
  T* dc_buf = state + BH;  // dL/dc, ping-pong between steps
  std::vector<T> zeros(H, T(0));
  auto row = [&](const T* base, int64_t b) { return base ? base + b * H : zeros.data(); };

  // Per step, [dx_t | dh_{t-1}] = dgates_t [W_ih | W_hh]: one packed dgates_t for both.
  const int nt = step_threads(B, H, p.T);
  RecurrentGemm<T> rec(false, G, B, {{w_ih, I, I}, {w_hh, H, H}}, nt);
  const StepSplit split(B, H, nt);
  // Row panels as work items when rows are whole (as in the forward): 2 barriers per step, or
  // none when the panels split evenly by rows (split_by_rows).
  const bool by_panel = split.per_row == 1;
  const int64_t items = by_panel ? rec.m_panels() : split.items, mr = rec.mr();
  const bool by_rows = by_panel && split_by_rows(rec.m_panels(), nt);
  auto item = [&](int64_t t, int64_t it) {
    const bool last = t == p.T - 1;
    const T* act = gates + t * B * G;
    T* dg_t = dgates + t * B * G;
    const T* dy_t = dy ? dy + t * BH : nullptr;
    const T* dh_next = last ? dhT : dh_rec;
    const T* dc_next = last ? dcT : dc_buf + ((t + 1) % 2) * BH;
    T* dc_prev = (t == 0 && dc0) ? dc0 : dc_buf + (t % 2) * BH;
    const int64_t b0 = by_panel ? it * mr : it / split.per_row, b1 = by_panel ? std::min(B, b0 + mr) : b0 + 1;
    const int64_t j0 = by_panel ? 0 : (it % split.per_row) * split.chunk;
    const int64_t j1 = by_panel ? H : std::min(H, j0 + split.chunk);
    for (int64_t b = b0; b < b1; ++b)
      pw.backward(H, j0, j1, act + b * G, cs + (t + 1) * BH + b * H, cs + t * BH + b * H, row(dy_t, b), row(dh_next, b),
                  row(dc_next, b), dg_t + b * G, dc_prev + b * H);
    if (by_panel) rec.pack_panel(dg_t, G, it);  // this step's A, while in cache
  };
  // dh_{t-1} is dh0 at t = 0, skipped when nobody asked for it.
  auto dh_out = [&](int64_t t) { return t > 0 ? dh_rec : dh0; };
#pragma omp parallel num_threads(team(nt)) if (nt > 1)
  if (by_rows) {
    int64_t i0, i1;
    row_run(items, omp_get_thread_num(), omp_get_num_threads(), &i0, &i1);
    for (int64_t t = p.T - 1; t >= 0; --t) {
      for (int64_t it = i0; it < i1; ++it) item(t, it);
      rec.tiles_rows(i0, i1, T(0), {dx + t * B * I, I}, {dh_out(t), H});
    }
  } else {
    for (int64_t t = p.T - 1; t >= 0; --t) {
      const T* dg_t = dgates + t * B * G;
#pragma omp for schedule(static)
      for (int64_t it = 0; it < items; ++it) item(t, it);
      if (by_panel)
        rec.tiles(T(0), {dx + t * B * I, I}, {dh_out(t), H});
      else
        rec.step(dg_t, G, T(0), {dx + t * B * I, I}, {dh_out(t), H});
    }
  }

  // [dW_ih | dW_hh] = dgates^T [X | H_prev] and db: one GEMM over all T*B rows (lstm_gemm.h).
  lstm_weight_grad<T>(TB, G, I, H, dgates, xh, dw_ih, dw_hh, db);
}

#define DK_INSTANTIATE_LSTM(T)                                                                                  \
  template void lstm_forward<T>(const LstmParams&, const T*, const T*, const T*, const T*, const T*, const T*,  \
                                const T*, T*, T*, T*, T*, T*, T*);                                              \
  template void lstm_backward<T>(const LstmParams&, const T*, const T*, const T*, const T*, const T*, const T*, \
                                 const T*, const T*, T*, T*, T*, T*, T*, T*);
DK_INSTANTIATE_LSTM(float)
DK_INSTANTIATE_LSTM(double)
#undef DK_INSTANTIATE_LSTM

}  // namespace dk::cpu
