// Vector helpers for the pooling kernels, written with GCC/Clang vector extensions so that each
// ISA copy (see pooling_impl.h) gets its own registers and permutes. Included by pooling_impl.h
// inside its per-ISA namespace: nothing here may be defined outside DK_POOL_NS.
#pragma once
#ifndef DK_POOL_NS
#error "include pooling_vec.h through pooling_impl.h"
#endif

#include <cstdint>
#include <cstring>
#include <utility>

namespace dk::cpu::DK_POOL_NS {

// The widest vector register this copy is compiled for. Vector-extension types wider than it
// are split by GCC, and some operations (64-bit lane compares) then fall back to scalar code.
#if defined(__AVX512F__)
constexpr int kVecBytes = 64;
#elif defined(__AVX__)
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif

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

}  // namespace dk::cpu::DK_POOL_NS
