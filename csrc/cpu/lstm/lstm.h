#pragma once
// LSTM over a whole (T, B, I) sequence, forward and backward (T = float or double); the
// cell is the T = 1 case. Gate order i, f, g, o; w_ih (4H, I), w_hh (4H, H), biases (4H,).
// Optional inputs are nullptr: h0 / c0 (zeros), b_ih / b_hh (no bias).
#include <cstdint>

#include "common/lstm_params.h"

namespace dk::cpu {

// Forward. gates (T, B, 4H) is written with the activations i, f, g, o of every step (nullptr
// for inference: then a per-thread workspace is used).
// y (T, B, H), hT, cT (B, H) are the outputs. When the caller keeps a context for the
// backward it passes xh (T, B, I+H), each row [x_t, h entering step t] (h = h0 at t = 0), and
// cs (T+1, B, H), the cell states (cs[0] = c0); both nullptr for inference.
template <typename T>
void lstm_forward(const LstmParams& p, const T* x, const T* h0, const T* c0, const T* w_ih, const T* w_hh,
                  const T* b_ih, const T* b_hh, T* y, T* hT, T* cT, T* gates, T* xh, T* cs);

// Backward through time from the forward's saved gates, xh and cs. dy (T, B, H), dhT and dcT
// (B, H) may be nullptr (zeros). Writes dx (T, B, I), dw_ih (4H, I), dw_hh (4H, H), and where
// not nullptr dh0, dc0 (B, H) and db (4H,) (the gradient of b_ih, equal to that of b_hh).
template <typename T>
void lstm_backward(const LstmParams& p, const T* xh, const T* w_ih, const T* w_hh, const T* gates, const T* cs,
                   const T* dy, const T* dhT, const T* dcT, T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db);

}  // namespace dk::cpu
