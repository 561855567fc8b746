// Kernels that test the simulator's tensor-core and async-copy emulation through the
// cuda/common wrappers, compiled into deepkern._cuda_sim only (tests/test_simt_tensor.py builds
// the fragments in numpy from the PTX ISA layouts and checks the results against matmuls).
#include <pybind11/pybind11.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "bindings/registry.h"
#include "cuda/common/cp_async.cuh"
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/mma.cuh"

namespace dk::simt_test {
namespace {

// Per lane: 4 A words, 2 B words, 4 C floats in; 4 D floats out. kind 0 f16, 1 bf16, 2 tf32.
__global__ void mma_raw(const uint32_t* in, float* out, int kind) {
  const int lane = threadIdx.x;
  const uint32_t* w = in + lane * 10;
  float c[4], d[4];
  std::memcpy(c, w + 6, sizeof c);
  if (kind == 0) dk::cuda::mma_m16n8k16_f16(d, w, w + 4, c);
  if (kind == 1) dk::cuda::mma_m16n8k16_bf16(d, w, w + 4, c);
  if (kind == 2) dk::cuda::mma_m16n8k8_tf32(d, w, w + 4, c);
  for (int i = 0; i < 4; ++i) out[lane * 4 + i] = d[i];
}

// Four 8x8 b16 matrices (in: 256 x uint16) to shared memory; lane l passes row l%8 of matrix
// l/8; out: the 4 registers of each lane. variant: 1/2/4 matrices, +8 for .trans.
__global__ void ldmatrix_raw(const uint16_t* in, uint32_t* out, int variant) {
  __shared__ __align__(16) uint16_t s[4][8][8];
  const int lane = threadIdx.x;
  for (int i = 0; i < 8; ++i) (&s[0][0][0])[lane * 8 + i] = in[lane * 8 + i];
  __syncwarp();
  uint32_t r[4] = {0, 0, 0, 0};
  const uint16_t* row = s[lane / 8][lane % 8];
  switch (variant) {
    case 1: dk::cuda::ldmatrix_x1(r, row); break;
    case 2: dk::cuda::ldmatrix_x2(r, row); break;
    case 4: dk::cuda::ldmatrix_x4(r, row); break;
    case 9: dk::cuda::ldmatrix_x1_trans(r, row); break;
    case 10: dk::cuda::ldmatrix_x2_trans(r, row); break;
    case 12: dk::cuda::ldmatrix_x4_trans(r, row); break;
  }
  for (int i = 0; i < 4; ++i) out[lane * 4 + i] = r[i];
}

// D (16x8, row-major) = A (16x16 half, row-major) * B (16x8 half, row-major) the usual way:
// A by ldmatrix_x4, B by ldmatrix_x2_trans, one mma.
__global__ void ldmatrix_mma(const __half* a, const __half* b, float* d) {
  __shared__ __align__(16) __half sa[16][16];
  __shared__ __align__(16) __half sb[16][8];
  const int lane = threadIdx.x;
  for (int i = lane; i < 256; i += 32) sa[i / 16][i % 16] = a[i];
  for (int i = lane; i < 128; i += 32) sb[i / 8][i % 8] = b[i];
  __syncwarp();
  uint32_t fa[4], fb[2];
  const int j = lane / 8, r = lane % 8;
  dk::cuda::ldmatrix_x4(fa, &sa[r + 8 * (j & 1)][8 * (j >> 1)]);
  dk::cuda::ldmatrix_x2_trans(fb, &sb[lane % 16][0]);
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f}, out[4];
  dk::cuda::mma_m16n8k16_f16(out, fa, fb, c);
  const int g = lane >> 2, t = lane & 3;
  for (int i = 0; i < 4; ++i) d[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = out[i];
}

// 16 threads copy 128 floats in two groups: s[0:64] by cp_async_16 (threads whose bit in
// pred_mask is clear get zeros), then s[64:128] by cp_async_8 twice each. out[0:128]: shared
// memory before any wait; out[128:256] after wait<1> (first group landed); out[256:384] after wait<0>.
__global__ void cp_async_groups(const float* in, float* out, int pred_mask) {
  __shared__ __align__(16) float s[128];
  const int t = threadIdx.x;
  dk::cuda::cp_async_16(&s[t * 4], in + t * 4, (pred_mask >> t) & 1);
  dk::cuda::cp_async_commit();
  dk::cuda::cp_async_8(&s[64 + t * 4], in + 64 + t * 4);
  dk::cuda::cp_async_8(&s[66 + t * 4], in + 66 + t * 4);
  dk::cuda::cp_async_commit();
  for (int wait = 0; wait < 3; ++wait) {
    if (wait == 1) dk::cuda::cp_async_wait<1>();
    if (wait == 2) dk::cuda::cp_async_wait<0>();
    __syncthreads();
    for (int i = t; i < 128; i += 16) out[128 * wait + i] = s[i];
    __syncthreads();
  }
}

// BROKEN: the destination is global memory.
__global__ void cp_async_to_global(const float* in, float* out, int) { dk::cuda::cp_async_16(out, in); }

void register_selftest_tensor(pybind11::module_& m) {
  namespace py = pybind11;
  m.def("_simt_selftest_tensor", [](const std::string& name, uintptr_t x, uintptr_t y, uintptr_t z, int arg) {
    py::gil_scoped_release nogil;
    using namespace dk::cuda;
    if (name == "mma_raw")
      launch(mma_raw, 1, 32, 0, nullptr, reinterpret_cast<const uint32_t*>(x), reinterpret_cast<float*>(y), arg);
    else if (name == "ldmatrix_raw")
      launch(ldmatrix_raw, 1, 32, 0, nullptr, reinterpret_cast<const uint16_t*>(x), reinterpret_cast<uint32_t*>(y),
             arg);
    else if (name == "ldmatrix_mma")
      launch(ldmatrix_mma, 1, 32, 0, nullptr, reinterpret_cast<const __half*>(x), reinterpret_cast<const __half*>(y),
             reinterpret_cast<float*>(z));
    else if (name == "cp_async_groups")
      launch(cp_async_groups, 1, 16, 0, nullptr, reinterpret_cast<const float*>(x), reinterpret_cast<float*>(y), arg);
    else if (name == "cp_async_to_global")
      launch(cp_async_to_global, 1, 1, 0, nullptr, reinterpret_cast<const float*>(x), reinterpret_cast<float*>(y), arg);
    else
      throw std::invalid_argument("no tensor selftest kernel " + name);
  });
  m.def("_simt_to_tf32", [](float x) { return dk::cuda::to_tf32(x); });
}

DK_REGISTER_BINDINGS(register_selftest_tensor);

}  // namespace
}  // namespace dk::simt_test
