// The fused SGD step (sgd.h). Generic code only, built without contraction (CMakeLists.txt), as
// adam.cpp: one pass reads w, g (and buf) and writes w (and buf) where the array form makes a
// temporary per operation (3 ms for a 2-million-parameter LSTM language model per step, unthreaded).
#include "cpu/optim/sgd.h"

#include "cpu/common/parallel.h"

namespace dk::cpu {

namespace {

// Which of the rule's branches apply, as template flags so each loop is branch-free and vectorises.
template <typename T, bool WD, bool MOM, bool FIRST, bool NESTEROV>
void sgd_chunk(T* __restrict w, const T* __restrict g, T* __restrict buf, int64_t n, const SgdStep& s) {
  const T lr = T(s.lr), mom = T(s.momentum), keep = T(1.0 - s.dampening), wd = T(s.weight_decay);
  for (int64_t i = 0; i < n; ++i) {
    T gi = g[i];
    if (WD) gi = gi + wd * w[i];
    if (MOM) {
      const T b = FIRST ? gi : buf[i] * mom + keep * gi;
      buf[i] = b;
      gi = NESTEROV ? gi + mom * b : b;
    }
    w[i] = w[i] - lr * gi;
  }
}

template <typename T, bool WD>
void sgd_chunk_dispatch(T* w, const T* g, T* buf, int64_t n, const SgdStep& s) {
  if (s.momentum == 0.0) return sgd_chunk<T, WD, false, false, false>(w, g, buf, n, s);
  if (s.first)
    return s.nesterov ? sgd_chunk<T, WD, true, true, true>(w, g, buf, n, s)
                      : sgd_chunk<T, WD, true, true, false>(w, g, buf, n, s);
  return s.nesterov ? sgd_chunk<T, WD, true, false, true>(w, g, buf, n, s)
                    : sgd_chunk<T, WD, true, false, false>(w, g, buf, n, s);
}

}  // namespace

template <typename T>
void sgd_update(T* w, const T* g, T* buf, int64_t n, const SgdStep& s) {
  constexpr int64_t kChunk = int64_t(1) << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const double streams = s.momentum == 0.0 ? 3.0 : 5.0;  // w read and written, g read (+ buf both ways)
  // elementwise: any split gives the same bits
#pragma omp parallel for schedule(static) num_threads(team(threads_for_bytes(double(n) * streams * sizeof(T))))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t i0 = c * kChunk, len = i0 + kChunk < n ? kChunk : n - i0;
    T* b = buf ? buf + i0 : nullptr;
    if (s.weight_decay != 0.0)
      sgd_chunk_dispatch<T, true>(w + i0, g + i0, b, len, s);
    else
      sgd_chunk_dispatch<T, false>(w + i0, g + i0, b, len, s);
  }
}

template void sgd_update<float>(float*, const float*, float*, int64_t, const SgdStep&);
template void sgd_update<double>(double*, const double*, double*, int64_t, const SgdStep&);

}  // namespace dk::cpu
