#pragma once
// Body of the LSTM pointwise kernels, compiled once per ISA (cpu/common/isa.h): included by
// lstm_pointwise.cpp (baseline ISA) and by lstm_pointwise_avx2.cpp / _avx512.cpp, which compile
// the same loops with wider vectors, each in its own namespace (DK_ISA_NAMESPACE).
//
// float32 uses branch-free exp/sigmoid/tanh written so the compiler vectorises the j-loops;
// float64 uses libm (the double path is for gradient checks, where accuracy is what matters).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "cpu/common/simd.h"
#include "cpu/lstm/lstm_pointwise.h"

// GCC will not if-convert the clamps and selects below under -ftrapping-math (the default),
// which leaves the loops scalar; these functions never rely on floating-point traps.
// Functions compiled with other options (std::min, std::memcpy, ...) would not inline here,
// so only operators and __builtin_* are used inside this region.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif

namespace dk::cpu::DK_ISA_NAMESPACE::lstm {

// 1 / (1 + e^-x): with the clamped exp the denominator is in [1, 2e38]: no overflow, no NaN.
inline float sigmoid_f(float x) { return 1.0f / (1.0f + simd::exp(-x)); }

// tanh: 1 - 2/(1 + e^{2|x|}) with the sign put back; below |x| = 0.25 that form loses
// relative precision to cancellation, so there a short odd Taylor series is used instead.
inline float tanh_f(float x) {
  const float ax = __builtin_fabsf(x);
  const float big = 1.0f - 2.0f / (1.0f + simd::exp(2.0f * ax));
  const float z = x * x;
  float s = -1382.0f / 155925.0f;
  s = s * z + 62.0f / 2835.0f;
  s = s * z - 17.0f / 315.0f;
  s = s * z + 2.0f / 15.0f;
  s = s * z - 1.0f / 3.0f;
  const float small = x + x * z * s;
  const float signed_big = __builtin_copysignf(big, x);
  return ax < 0.25f ? small : signed_big;  // a select, not a blend: small is NaN at +-inf
}

inline double sigmoid_d(double x) {
  // Stable for both signs: exp of a non-positive number only.
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

inline float act_sigmoid(float x) { return sigmoid_f(x); }
inline float act_tanh(float x) { return tanh_f(x); }
inline double act_sigmoid(double x) { return sigmoid_d(x); }
inline double act_tanh(double x) { return std::tanh(x); }

// Two passes over the row: each gate's activation in its own loop, then the cell update. One
// fused loop over all four gates held too many live vectors (polynomial constants of sigmoid and
// tanh for four streams) and spilled: measured 1.9 -> 1.6 ns per unit (AVX-512), 4.0 -> 2.7-3.3
// (AVX2) with the row in L1. Every value is computed by the same expression as before.
template <typename T>
void forward_row(int64_t H, int64_t j0, int64_t j1, T* __restrict g, const T* __restrict rec, const T* __restrict bias,
                 const T* __restrict c_prev, T* __restrict c, T* __restrict h) {
  for (int q = 0; q < 4; ++q) {
    T* __restrict gq = g + q * H;
    const T* __restrict rq = rec + q * H;
    const T* __restrict bq = bias + q * H;
    if (q == 2) {
      for (int64_t j = j0; j < j1; ++j) gq[j] = act_tanh(gq[j] + rq[j] + bq[j]);
    } else {
      for (int64_t j = j0; j < j1; ++j) gq[j] = act_sigmoid(gq[j] + rq[j] + bq[j]);
    }
  }
  const T* __restrict gi = g;
  const T* __restrict gf = g + H;
  const T* __restrict gg = g + 2 * H;
  const T* __restrict go = g + 3 * H;
  for (int64_t j = j0; j < j1; ++j) {
    const T cn = gf[j] * c_prev[j] + gi[j] * gg[j];
    c[j] = cn;
    h[j] = go[j] * act_tanh(cn);
  }
}

template <typename T>
void backward_row(int64_t H, int64_t j0, int64_t j1, const T* __restrict act, const T* __restrict c,
                  const T* __restrict c_prev, const T* __restrict dy, const T* __restrict dh_next,
                  const T* __restrict dc_next, T* __restrict dg, T* __restrict dc_prev) {
  const T* __restrict ai = act;
  const T* __restrict af = act + H;
  const T* __restrict ag = act + 2 * H;
  const T* __restrict ao = act + 3 * H;
  T* __restrict di = dg;
  T* __restrict df = dg + H;
  T* __restrict dgc = dg + 2 * H;
  T* __restrict dout = dg + 3 * H;
  for (int64_t j = j0; j < j1; ++j) {
    const T i = ai[j], f = af[j], gc = ag[j], o = ao[j];
    const T tc = act_tanh(c[j]);
    const T dh = dy[j] + dh_next[j];
    const T dc = dc_next[j] + dh * o * (T(1) - tc * tc);
    di[j] = dc * gc * i * (T(1) - i);
    df[j] = dc * c_prev[j] * f * (T(1) - f);
    dgc[j] = dc * i * (T(1) - gc * gc);
    dout[j] = dh * tc * o * (T(1) - o);
    dc_prev[j] = dc * f;
  }
}

const LstmPointwise<float>& pointwise_f32() {
  static const LstmPointwise<float> table{&forward_row<float>, &backward_row<float>};
  return table;
}

}  // namespace dk::cpu::DK_ISA_NAMESPACE::lstm

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
