#pragma once
// The one SIMD vector layer of the CPU kernels: GCC/Clang vector extensions at the widest register
// the including copy is compiled for (see isa.h), load / store / splat, the lane permutes and
// strided loads (pooling), and the one exp (scalar or lane-wise) the activations and the softmax share. Everything is
// defined inside DK_ISA_NAMESPACE: each per-ISA copy gets its own, compiled with its own flags.
#include <cstdint>
#include <cstring>
#include <utility>

#include "cpu/common/isa.h"

namespace dk::cpu::DK_ISA_NAMESPACE::simd {

// The widest vector register this copy is compiled for. Vector-extension types wider than it
// are split by GCC, and some operations (64-bit lane compares) then fall back to scalar code.
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif

// Vec<T>::v: kVecBytes of T; Vec<T>::u: the same lanes as unsigned integers of T's width.
template <class T>
struct Vec;
template <>
struct Vec<float> {
  typedef float v __attribute__((vector_size(kVecBytes)));
  typedef uint32_t u __attribute__((vector_size(kVecBytes)));
};
template <>
struct Vec<double> {
  typedef double v __attribute__((vector_size(kVecBytes)));
  typedef uint64_t u __attribute__((vector_size(kVecBytes)));
};

template <class T>
constexpr int kLanes = int(kVecBytes / sizeof(T));

template <class T>
inline typename Vec<T>::v load(const T* p) {
  typename Vec<T>::v r;
  __builtin_memcpy(&r, p, sizeof(r));
  return r;
}
template <class T>
inline void store(T* p, typename Vec<T>::v x) {
  __builtin_memcpy(p, &x, sizeof(x));
}
template <class T>
inline typename Vec<T>::v splat(T s) {
  return typename Vec<T>::v{} + s;
}

// The register-tile operations of a GEMM micro-kernel (gemm_microkernel_impl.h) on Vec<T>.
// fma is a*b + c, fused by the compiler where the copy has FMA (GNU C++ contracts).
template <class TT>
struct Ops {
  using T = TT;
  using V = typename Vec<T>::v;
  static constexpr int W = kLanes<T>;
  static V load(const T* p) { return simd::load(p); }
  static void store(T* p, V v) { simd::store(p, v); }
  static V bcast(const T* p) { return splat<T>(*p); }
  static V set1(T x) { return splat<T>(x); }
  static V zero() { return V{}; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V mul(V a, V b) { return a * b; }
};

// a * b + c rounded as the vector code rounds it: fused where the copy has FMA.
template <class T>
inline T madd(T a, T b, T c) {
#ifdef __FMA__
  if constexpr (sizeof(T) == sizeof(float))
    return __builtin_fmaf(a, b, c);
  else
    return __builtin_fma(a, b, c);
#else
  return a * b + c;
#endif
}

// ------------------------------------------------------------------ lane permutes
// Two-source lane permutes of the 2V-lane concatenation a:b, lane k taking Pick::lane(k, V):
// Even / Odd de-interleave; ZipLo / ZipHi interleave the first / second halves of a and b.
struct Even {
  static constexpr int lane(int k, int) { return 2 * k; }
};
struct Odd {
  static constexpr int lane(int k, int) { return 2 * k + 1; }
};
// Lane k = src[2k] when a = src[0, V) and b = src[V-1, 2V-1): a[2k] for 2k < V, else b[2k - V + 1].
struct EvenOfShifted {
  static constexpr int lane(int k, int v) { return 2 * k < v ? 2 * k : 2 * k + 1; }
};
struct ZipLo {
  static constexpr int lane(int k, int v) { return (k % 2) * v + k / 2; }
};
struct ZipHi {
  static constexpr int lane(int k, int v) { return (k % 2) * v + v / 2 + k / 2; }
};

template <typename Pick, typename TV, int... K>
inline TV permute2(TV a, TV b, std::integer_sequence<int, K...>) {
  constexpr int V = sizeof...(K);
#if defined(__clang__)
  return __builtin_shufflevector(a, b, Pick::lane(K, V)...);
#else
  typedef decltype(a < a) MV;  // integer lanes of T's width: the mask type __builtin_shuffle wants
  return __builtin_shuffle(a, b, MV{Pick::lane(K, V)...});
#endif
}

template <typename Pick, int V, typename TV>
inline TV permute2(TV a, TV b) {
  return permute2<Pick>(a, b, std::make_integer_sequence<int, V>{});
}

// A lane mask (all-ones / zero integer lanes) converted to the lane width of TV, for `m ? a : b`.
template <typename TV, typename M>
inline auto mask_for(M m) {
  return __builtin_convertvector(m, decltype(TV{} < TV{}));
}

// Loads V values src[0], src[s], ..., src[(V-1)s] into a vector, reading nothing past
// src[(V-1)s] (the last one may be the array's last element). For s = 2: src[0, V) and
// src[V-1, 2V-1), one two-source permute.
template <typename TV, typename T, int S, int V>
inline TV load_strided(const T* src, int64_t s) {
  TV v;
  if constexpr (S == 1) {
    std::memcpy(&v, src, sizeof(TV));
  } else if constexpr (S == 2) {
    TV lo, hi;
    std::memcpy(&lo, src, sizeof(TV));
    std::memcpy(&hi, src + V - 1, sizeof(TV));
    return permute2<EvenOfShifted, V>(lo, hi);
  } else {
    for (int k = 0; k < V; ++k) v[k] = src[k * s];
  }
  return v;
}

// ------------------------------------------------------------------ exp
// GCC will not if-convert the clamps and selects of a scalar exp under -ftrapping-math (the
// default), which would leave the loops that call it scalar; exp never relies on traps. It is
// always_inline so that it inlines into callers compiled with or without trapping math.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif

template <class T>
struct ExpConst;
template <>
struct ExpConst<float> {
  using Bits = uint32_t;
  static constexpr float lo = -87.0f;  // below: 0 (e^-87 ~ 1.6e-38, the smallest normal's scale)
  static constexpr float hi = 88.0f;   // above: clamped, so 2^n stays a finite float
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  static constexpr Bits shifter_bits = 0x4B400000u, bias = 127;
  static constexpr int mant = 23, degree = 7;
  static constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
};
template <>
struct ExpConst<double> {
  using Bits = uint64_t;
  static constexpr double lo = -708.0, hi = 709.0;
  static constexpr double log2e = 1.4426950408889634;
  static constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr Bits shifter_bits = 0x4338000000000000ull, bias = 1023;
  static constexpr int mant = 52, degree = 13;
  static constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
};

// exp(x) for V = T or Vec<T>::v (U: T's width as unsigned integers, lane-wise for vectors):
// x = n ln2 + r with |r| <= ln2/2 (Cody-Waite, two parts), Taylor polynomial of e^r (truncation
// error below T's epsilon), times 2^n built in the exponent bits (n read from the shifter's low
// mantissa bits: GCC vectorises this, not a float->int cast). x < lo gives 0 (also -inf),
// x > hi gives e^hi (also +inf), NaN stays NaN.
template <class T, class V, class U>
__attribute__((always_inline)) inline V exp_impl(V x) {
  using C = ExpConst<T>;
  const V lo = V{} + C::lo, hi = V{} + C::hi;
  const auto tiny = x < lo;
  x = tiny ? lo : x;
  x = x > hi ? hi : x;
  const V kf = x * C::log2e + C::shifter;
  const V n = kf - C::shifter;
  const V r = (x - n * C::ln2_hi) - n * C::ln2_lo;
  T coef[C::degree + 1];  // 1/k!
  coef[0] = 1;
  for (int j = 1; j <= C::degree; ++j) coef[j] = coef[j - 1] / T(j);
  V p = V{} + coef[C::degree];
#pragma GCC unroll 16
  for (int j = C::degree - 1; j >= 0; --j) p = p * r + coef[j];
  U kbits;  // unsigned: a NaN x gives garbage bits here, and the shift must stay defined
  __builtin_memcpy(&kbits, &kf, sizeof(kbits));
  const U bits = (kbits - C::shifter_bits + C::bias) << C::mant;
  V scale;
  __builtin_memcpy(&scale, &bits, sizeof(scale));
  return tiny ? V{} : p * scale;
}

__attribute__((always_inline)) inline float exp(float x) { return exp_impl<float, float, uint32_t>(x); }
__attribute__((always_inline)) inline double exp(double x) { return exp_impl<double, double, uint64_t>(x); }
__attribute__((always_inline)) inline Vec<float>::v exp(Vec<float>::v x) {
  return exp_impl<float, Vec<float>::v, Vec<float>::u>(x);
}
__attribute__((always_inline)) inline Vec<double>::v exp(Vec<double>::v x) {
  return exp_impl<double, Vec<double>::v, Vec<double>::u>(x);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

}  // namespace dk::cpu::DK_ISA_NAMESPACE::simd
