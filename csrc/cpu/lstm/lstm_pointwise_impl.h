#pragma once
// Body of the LSTM pointwise kernels. Included by lstm_pointwise.cpp (baseline ISA) and by
// lstm_pointwise_avx2.cpp / _avx512.cpp, which compile the same loops with wider vectors.
// Each includer defines DK_LSTM_NS to a distinct namespace so the inline functions of the
// different ISAs never merge (an ODR violation would let the linker pick an AVX-512 copy).
//
// float32 uses branch-free exp/sigmoid/tanh written so the compiler vectorises the j-loops;
// float64 uses libm (the double path is for gradient checks, where accuracy is what matters).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#ifndef DK_LSTM_NS
#error "define DK_LSTM_NS before including lstm_pointwise_impl.h"
#endif

// GCC will not if-convert the clamps and selects below under -ftrapping-math (the default),
// which leaves the loops scalar; these functions never rely on floating-point traps.
// Functions compiled with other options (std::min, std::memcpy, ...) would not inline here,
// so only operators and __builtin_* are used inside this region.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif

namespace dk::cpu::DK_LSTM_NS {

// exp(x) for float, relative error ~1e-7 over the clamped range. x is clamped to [-87, 88]
// so 2^n stays a normal float: sigmoid / tanh built on it never see inf or NaN.
inline float exp_f(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // n = round(x / ln2) with the 1.5*2^23 trick: adding the shifter leaves n in the low
  // mantissa bits of kf, read back as an integer (GCC will not vectorise a float->int cast
  // after the clamp, but does this).
  const float shifter = 12582912.0f;  // bit pattern 0x4B400000
  const float kf = x * 1.44269504088896341f + shifter;
  const float n = kf - shifter;
  uint32_t kbits;  // unsigned: a NaN x gives garbage bits here, and the shift below must stay defined
  __builtin_memcpy(&kbits, &kf, sizeof(kbits));
  // r = x - n*ln2 in two parts (Cody-Waite) so r keeps full precision; |r| <= ln2/2.
  float r = x - n * 0.693145751953125f;
  r = r - n * 1.42860682030941723e-6f;
  // Taylor to degree 7: truncation error r^8/8! < 6e-9 on |r| <= ln2/2.
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const uint32_t bits = (kbits - 0x4B400000u + 127u) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// 1 / (1 + e^-x): with the clamped exp the denominator is in [1, 6e37]: no overflow, no NaN.
inline float sigmoid_f(float x) { return 1.0f / (1.0f + exp_f(-x)); }

// tanh: 1 - 2/(1 + e^{2|x|}) with the sign put back; below |x| = 0.25 that form loses
// relative precision to cancellation, so there a short odd Taylor series is used instead.
inline float tanh_f(float x) {
  const float ax = __builtin_fabsf(x);
  const float big = 1.0f - 2.0f / (1.0f + exp_f(2.0f * ax));
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

template <typename T>
void forward_row(int64_t H, int64_t j0, int64_t j1, T* __restrict g, const T* __restrict rec,
                 const T* __restrict bias, const T* __restrict c_prev, T* __restrict c, T* __restrict h) {
  T* __restrict gi = g;
  T* __restrict gf = g + H;
  T* __restrict gg = g + 2 * H;
  T* __restrict go = g + 3 * H;
  const T* __restrict ri = rec;
  const T* __restrict rf = rec + H;
  const T* __restrict rg = rec + 2 * H;
  const T* __restrict ro = rec + 3 * H;
  const T* __restrict bi = bias;
  const T* __restrict bf = bias + H;
  const T* __restrict bg = bias + 2 * H;
  const T* __restrict bo = bias + 3 * H;
  for (int64_t j = j0; j < j1; ++j) {
    const T i = act_sigmoid(gi[j] + ri[j] + bi[j]);
    const T f = act_sigmoid(gf[j] + rf[j] + bf[j]);
    const T gc = act_tanh(gg[j] + rg[j] + bg[j]);
    const T o = act_sigmoid(go[j] + ro[j] + bo[j]);
    const T cn = f * c_prev[j] + i * gc;
    gi[j] = i;
    gf[j] = f;
    gg[j] = gc;
    go[j] = o;
    c[j] = cn;
    h[j] = o * act_tanh(cn);
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

}  // namespace dk::cpu::DK_LSTM_NS

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
