#pragma once
// Body of the float32 softmax cross-entropy rows, compiled once per ISA (cpu/common/isa.h): the
// max, exp and sum loops are written with independent lanes so they vectorise, and exp is the
// library's branch-free one (simd.h), shared with the activations and attention's softmax.
#include <cmath>
#include <cstdint>

#include "cpu/common/simd.h"
#include "cpu/loss/softmax_xent.h"

// As in lstm_pointwise_impl.h: without trapping math GCC if-converts the selects and vectorises.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif

namespace dk::cpu::DK_ISA_NAMESPACE::loss {

constexpr int kLanes = 16;

// max over the row: NaNs do not win here; they reach every output through exp(z - m) below.
inline float row_max(const float* z, int64_t C) {
  float acc[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = -__builtin_inff();
  int64_t j = 0;
  for (; j + kLanes <= C; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] = z[j + l] > acc[l] ? z[j + l] : acc[l];
  for (; j < C; ++j) acc[0] = z[j] > acc[0] ? z[j] : acc[0];
  float m = acc[0];
  for (int l = 1; l < kLanes; ++l) m = acc[l] > m ? acc[l] : m;
  return m;
}

// e_j = exp(z_j - m) into e; returns their sum (lane partial sums, then the lanes in order).
inline float exp_sum(const float* z, int64_t C, float m, float* e) {
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= C; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const float v = simd::exp(z[j + l] - m);
      e[j + l] = v;
      acc[l] += v;
    }
  for (; j < C; ++j) {
    e[j] = simd::exp(z[j] - m);
    acc[0] += e[j];
  }
  float s = 0.0f;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

double softmax_xent_rows_f32(const float* z, const int64_t* labels, int64_t r0, int64_t r1, int64_t C, float n_total,
                             float* probs, float* grad) {
  double loss = 0.0;
  for (int64_t r = r0; r < r1; ++r) {
    const float* zr = z + r * C;
    float* pr = probs + r * C;
    float* gr = grad + r * C;
    const float m = row_max(zr, C);
    const float s = exp_sum(zr, C, m, pr);
    for (int64_t j = 0; j < C; ++j) {
      pr[j] = pr[j] / s;
      gr[j] = pr[j] / n_total;
    }
    const int64_t y = labels[r];
    gr[y] = (pr[y] - 1.0f) / n_total;
    loss += double(__builtin_logf(s)) - double(zr[y] - m);
  }
  return loss;
}

}  // namespace dk::cpu::DK_ISA_NAMESPACE::loss

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
