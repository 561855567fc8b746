// The fused Adam step (adam.h). Generic code only (no per-ISA copy): the step is a few passes'
// worth of memory traffic per parameter, and without -mfma the compiler cannot contract a
// multiply and an add into one rounding, which would break the bit-for-bit match with numpy
// (CMakeLists.txt adds -ffp-contract=off all the same, and -fno-math-errno: sqrt's errno branch
// would keep the loop from vectorising; sqrt of a NaN or negative v gives NaN either way).
#include "cpu/optim/adam.h"

#include <cmath>

#include "cpu/common/parallel.h"

namespace dk::cpu {

namespace {

// One chunk; AMS (amsgrad) as a template flag so both loops stay branch-free and vectorise.
template <typename T, bool AMS>
void adam_chunk(T* __restrict w, const T* __restrict g, T* __restrict m, T* __restrict v, T* __restrict vmax, int64_t n,
                const AdamStep& s) {
  const T b1 = T(s.b1), c1 = T(1.0 - s.b1), b2 = T(s.b2), c2 = T(1.0 - s.b2);
  const double lr_bc1 = s.lr_bc1, sqrt_bc2 = s.sqrt_bc2, eps = s.eps;
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i];
    const T mi = m[i] * b1 + gi * c1;
    T vi = v[i] * b2 + (gi * c2) * gi;
    m[i] = mi;
    v[i] = vi;
    if (AMS) {
      const T old = vmax[i];
      vi = (old != old || old >= vi) ? old : vi;  // np.maximum: NaN wins
      vmax[i] = vi;
    }
    const double denom = double(std::sqrt(vi)) / sqrt_bc2 + eps;
    w[i] = T(double(w[i]) - lr_bc1 * (double(mi) / denom));
  }
}

}  // namespace

template <typename T>
void adam_update(T* w, const T* g, T* m, T* v, T* vmax, int64_t n, const AdamStep& s) {
  constexpr int64_t kChunk = int64_t(1) << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  // elementwise: any split gives the same bits
#pragma omp parallel for schedule(static) num_threads(team(threads_for_bytes(double(n) * 6 * sizeof(T))))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t i0 = c * kChunk, len = i0 + kChunk < n ? kChunk : n - i0;
    if (vmax)
      adam_chunk<T, true>(w + i0, g + i0, m + i0, v + i0, vmax + i0, len, s);
    else
      adam_chunk<T, false>(w + i0, g + i0, m + i0, v + i0, nullptr, len, s);
  }
}

template void adam_update<float>(float*, const float*, float*, float*, float*, int64_t, const AdamStep&);
template void adam_update<double>(double*, const double*, double*, double*, double*, int64_t, const AdamStep&);

}  // namespace dk::cpu
