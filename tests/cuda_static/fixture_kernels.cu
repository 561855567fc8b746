// Fixture kernels for tests/test_cuda_static_check.py: one of each kind the static check must tell
// apart (compiled for sm_90 by the test; not part of deepkern).
#include <cuda_fp16.h>

namespace fx {

__global__ void plain_kernel(float* x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = x[i] * 3.0f + 1.0f;
}

// A run-time indexed stack array: lives in local memory (LDL/STL).
__global__ void local_kernel(float* out, const int* idx) {
  float buf[64];
  for (int i = 0; i < 64; ++i) buf[i] = out[i] * 2.0f + static_cast<float>(threadIdx.x);
  out[threadIdx.x] = buf[idx[threadIdx.x] & 63];
}

// Named as a tensor-core kernel but computes with plain FMAs.
__global__ void fake_tc_kernel(const __half* a, const __half* b, float* d) {
  const int i = threadIdx.x;
  d[i] = __half2float(a[i]) * __half2float(b[i]) + d[i];
}

// One warp: cp.async a 16x16 half tile into shared memory, ldmatrix it, one m16n8k16 mma.
__global__ void mma_kernel(const __half* a, float* d) {
  __shared__ __align__(16) __half tile[16 * 16];
  const unsigned lane = threadIdx.x;
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(tile + lane * 8));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(a + lane * 8));
  asm volatile("cp.async.commit_group;\n" ::);
  asm volatile("cp.async.wait_group 0;\n" ::);
  __syncthreads();
  unsigned r[4];
  const unsigned row = static_cast<unsigned>(__cvta_generic_to_shared(tile + (lane % 16) * 16 + (lane / 16) * 8));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(row));
  float c[4];
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(c[0]), "=f"(c[1]), "=f"(c[2]), "=f"(c[3])
      : "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3]), "r"(r[0]), "r"(r[1]), "f"(0.0f), "f"(0.0f), "f"(0.0f), "f"(0.0f));
  for (int i = 0; i < 4; ++i) d[lane * 4 + i] = c[i];
}

}  // namespace fx
