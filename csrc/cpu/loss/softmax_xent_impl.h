#pragma once
// Body of the softmax cross-entropy rows, compiled once per ISA (cpu/common/isa.h): the
// max, exp and sum loops are written with independent lanes so they vectorise, and exp is the
// library's branch-free one (simd.h), shared with the activations and attention's softmax.
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

// float32: the library's branch-free exp; float64 (gradient checks, generic copy only): libm's.
inline float exp_of(float x) { return simd::exp(x); }
inline double exp_of(double x) { return __builtin_exp(x); }
inline float log_of(float x) { return __builtin_logf(x); }
inline double log_of(double x) { return __builtin_log(x); }

// max over the row: NaNs do not win here; they reach every output through exp(z - m) below.
template <typename T>
T row_max(const T* z, int64_t C) {
  T acc[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = -T(__builtin_inf());
  int64_t j = 0;
  for (; j + kLanes <= C; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] = z[j + l] > acc[l] ? z[j + l] : acc[l];
  for (; j < C; ++j) acc[0] = z[j] > acc[0] ? z[j] : acc[0];
  T m = acc[0];
  for (int l = 1; l < kLanes; ++l) m = acc[l] > m ? acc[l] : m;
  return m;
}

// e_j = exp(z_j - m) into e; returns their sum (lane partial sums, then the lanes in order).
template <typename T>
T exp_sum(const T* z, int64_t C, T m, T* e) {
  T acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= C; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const T v = exp_of(z[j + l] - m);
      e[j + l] = v;
      acc[l] += v;
    }
  for (; j < C; ++j) {
    e[j] = exp_of(z[j] - m);
    acc[0] += e[j];
  }
  T s = T(0);
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

// Rows [r0, r1): probs, grad and the summed loss (SoftmaxXentRows).
template <typename T>
double xent_rows(const T* z, const int64_t* labels, int64_t r0, int64_t r1, int64_t C, T n_total, T* probs, T* grad) {
  double loss = 0.0;
  for (int64_t r = r0; r < r1; ++r) {
    const T* zr = z + r * C;
    T* pr = probs + r * C;
    T* gr = grad + r * C;
    const T m = row_max(zr, C);
    const T s = exp_sum(zr, C, m, pr);
    for (int64_t j = 0; j < C; ++j) {
      pr[j] = pr[j] / s;
      gr[j] = pr[j] / n_total;
    }
    const int64_t y = labels[r];
    gr[y] = (pr[y] - T(1)) / n_total;
    loss += double(log_of(s)) - double(zr[y] - m);
  }
  return loss;
}

double softmax_xent_rows_f32(const float* z, const int64_t* labels, int64_t r0, int64_t r1, int64_t C, float n_total,
                             float* probs, float* grad) {
  return xent_rows<float>(z, labels, r0, r1, C, n_total, probs, grad);
}

}  // namespace dk::cpu::DK_ISA_NAMESPACE::loss

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
