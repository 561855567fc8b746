#pragma once
// The loop of conv2d_posrows_kernel.h, included once per ISA; the per-ISA differences are the
// vector width (simd::Ops) and the tile's height MR.
#include "cpu/common/simd.h"
#include "cpu/conv2d/conv2d_posrows_kernel.h"

namespace dk::cpu::DK_ISA_NAMESPACE::posrows {

// Positions per tile: 2*MR accumulators, two weight vectors and a broadcast in the vector registers.
// AVX-512 has 32: 14 rows (28 accumulators) ran the resnet 3x3/2 forward in 22 ms, 6 rows in 31, 12
// rows in 28 (benchmarks/results/conv.md, "Positions as rows on AVX-512"). AVX2's 16 registers: 6.
#if defined(DK_ISA_AVX512)
constexpr int kMR = 14;
#else
constexpr int kMR = 6;
#endif

// *p in every lane, as one broadcast load: s - 0 is s for every s (simd::splat's 0 + s is not, for
// s = -0, so the compiler keeps an add before the broadcast)
template <typename V, typename T>
inline V bcast(const T* p) {
  return *p - V{};
}

template <typename T>
void tile(int64_t kc, const T* __restrict Wp, const T* const* rows, const int64_t* __restrict offs, T* __restrict C,
          bool first) {
  using S = simd::Ops<T>;
  using V = typename S::V;
  constexpr int MR = kMR, W = S::W, NR = 2 * W;
  const T* r[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) r[i] = rows[i];
  V c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    c0[i] = first ? S::zero() : S::load(C + i * NR);
    c1[i] = first ? S::zero() : S::load(C + i * NR + W);
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const V b0 = S::load(Wp), b1 = S::load(Wp + W);
    const int64_t o = offs[k];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V a = bcast<V>(r[i] + o);
      c0[i] = S::fma(a, b0, c0[i]);
      c1[i] = S::fma(a, b1, c1[i]);
    }
    Wp += NR;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    S::store(C + i * NR, c0[i]);
    S::store(C + i * NR + W, c1[i]);
  }
}

template <typename T>
int tile_nr() {
  return 2 * simd::Ops<T>::W;
}

template <typename T>
int tile_mr() {
  return kMR;
}

#define DK_POSROWS_INSTANTIATE(T)                                                      \
  template void tile<T>(int64_t, const T*, const T* const*, const int64_t*, T*, bool); \
  template int tile_nr<T>();                                                           \
  template int tile_mr<T>();
DK_POSROWS_INSTANTIATE(float)
DK_POSROWS_INSTANTIATE(double)
#undef DK_POSROWS_INSTANTIATE

}  // namespace dk::cpu::DK_ISA_NAMESPACE::posrows
