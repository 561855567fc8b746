#pragma once
// Operand views of row-major matrices for the GEMM core (its OpA/OpB contract), shared by the plain
// GEMM launcher and the LSTM's all-steps GEMMs.
#include "cuda/common/device.cuh"

namespace dk::cuda::gemm {

// A matrix read along k with stride ld: element (r, k) at a[r + k*ld] (op(A) when trans_a, op(B) when not).
template <typename T_>
struct StridedK {
  using T = T_;
  const T* a;
  int64_t ld;
  struct Row {
    const T* p;
  };
  __device__ Row row(int64_t r) const { return Row{a + r}; }
  __device__ T load(const Row& r, int64_t k) const { return r.p[k * ld]; }
  __device__ const T* chunk(int64_t, int64_t) const { return a; }  // never async
};

// Element (r, k) at a[r*ld + k].
// (The same OpA contract as StridedK; only the addressing differs.)
template <typename T_>
struct ContigK {
  using T = T_;
  const T* a;
  int64_t ld;
  struct Row {
    const T* p;
  };
  __device__ Row row(int64_t r) const { return Row{a + r * ld}; }
  __device__ T load(const Row& r, int64_t k) const { return r.p[k]; }
  __device__ const T* chunk(int64_t r, int64_t k) const { return a + r * ld + k; }
};

}  // namespace dk::cuda::gemm
