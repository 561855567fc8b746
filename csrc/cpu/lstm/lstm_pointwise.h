#pragma once
// The fused pointwise parts of one LSTM step, on columns [j0, j1) of one batch row.
// Pointers are row pointers; callers pass a zero row for an absent input (never nullptr) and
// never alias an output with an input (so the loops vectorise).
//
// Forward: g (4H) holds the input projection, rec (4H) the recurrent term h_prev W_hh^T; g is
// overwritten with the activations i, f, g, o of g + rec + bias. c = f*c_prev + i*g, h = o*tanh(c).
// Backward: act (4H) are the saved activations, c / c_prev the cell states of the step; the
// incoming gradients are dh = dy + dh_next and dc_next. Writes the pre-activation gradients
// dg (4H) and dc_prev = dc * f.
#include <cstdint>

#include "cpu/common/isa.h"

namespace dk::cpu {

template <typename T>
struct LstmPointwise {
  void (*forward)(int64_t H, int64_t j0, int64_t j1, T* g, const T* rec, const T* bias, const T* c_prev, T* c, T* h);
  void (*backward)(int64_t H, int64_t j0, int64_t j1, const T* act, const T* c, const T* c_prev, const T* dy,
                   const T* dh_next, const T* dc_next, T* dg, T* dc_prev);
};

// The best implementation for this CPU (float32: vectorised activations per ISA; float64: libm).
template <typename T>
const LstmPointwise<T>& lstm_pointwise();

}  // namespace dk::cpu

// The per-ISA copies of the float32 table (lstm_pointwise_impl.h; picked in lstm_pointwise.cpp).
DK_ISA_DECLARE(namespace lstm { const LstmPointwise<float>& pointwise_f32(); })
