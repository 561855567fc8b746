#pragma once
// Tensor-core wrappers (sm_80+): mma.sync and ldmatrix as inline PTX under nvcc, the simulator's
// exact warp-collective emulation under DEEPKERN_SIMT. All 32 lanes call them converged.
// Registers hold the PTX ISA fragment layouts; for m16n8k16 with g = lane>>2, t = lane&3:
//   A reg r: row g + 8*(r&1), cols 2t + 8*(r>>1) + {0,1} (two halves packed, low = first)
//   B reg r: rows 2t + 8*r + {0,1}, col g;   C/D reg i: row g + 8*(i>>1), col 2t + (i&1).
// m16n8k8 tf32: A reg i: row g + 8*(i&1), col t + 4*(i>>1);  B reg i: row t + 4*i, col g.
#include "cuda/common/device.cuh"

namespace dk::cuda {

#if defined(DEEPKERN_SIMT)

#define DK_SITE const char *file = __builtin_FILE(), int line = __builtin_LINE()
inline void mma_m16n8k16_f16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], DK_SITE) {
  ::simt::mma_m16n8k16(::simt::MmaType::F16, d, a, b, c, file, line);
}
inline void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], DK_SITE) {
  ::simt::mma_m16n8k16(::simt::MmaType::BF16, d, a, b, c, file, line);
}
inline void mma_m16n8k8_tf32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], DK_SITE) {
  ::simt::mma_m16n8k8_tf32(d, a, b, c, file, line);
}
inline uint32_t to_tf32(float x) { return ::simt::to_tf32(x); }
inline void ldmatrix_x1(uint32_t r[1], const void* row, DK_SITE) { ::simt::ldmatrix(r, 1, false, row, file, line); }
inline void ldmatrix_x2(uint32_t r[2], const void* row, DK_SITE) { ::simt::ldmatrix(r, 2, false, row, file, line); }
inline void ldmatrix_x4(uint32_t r[4], const void* row, DK_SITE) { ::simt::ldmatrix(r, 4, false, row, file, line); }
inline void ldmatrix_x1_trans(uint32_t r[1], const void* row, DK_SITE) {
  ::simt::ldmatrix(r, 1, true, row, file, line);
}
inline void ldmatrix_x2_trans(uint32_t r[2], const void* row, DK_SITE) {
  ::simt::ldmatrix(r, 2, true, row, file, line);
}
inline void ldmatrix_x4_trans(uint32_t r[4], const void* row, DK_SITE) {
  ::simt::ldmatrix(r, 4, true, row, file, line);
}
#undef DK_SITE

#else

// Device code for an architecture below sm_80 traps; the host compilation pass sees empty bodies.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define DK_MMA_UNSUPPORTED __trap();
#else
#define DK_MMA_UNSUPPORTED
#endif

__device__ __forceinline__ void mma_m16n8k16_f16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                 const float c[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#else
  DK_MMA_UNSUPPORTED
#endif
}

// The f16 wrapper's twin: one PTX type suffix apart, as the instruction set names them.
__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                  const float c[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#else
  DK_MMA_UNSUPPORTED
#endif
}

__device__ __forceinline__ void mma_m16n8k8_tf32(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                 const float c[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
#else
  DK_MMA_UNSUPPORTED
#endif
}

// cvt.rna.tf32.f32: round to nearest, ties away from zero, to tf32 (low 13 mantissa bits zero).
__device__ __forceinline__ uint32_t to_tf32(float x) {
  uint32_t r = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
#else
  DK_MMA_UNSUPPORTED
#endif
  return r;
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define DK_LDMATRIX(NAME, NUM, TRANS, OUTS, ...)                                                  \
  __device__ __forceinline__ void NAME(uint32_t r[NUM], const void* row) {                        \
    const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(row));                   \
    asm volatile("ldmatrix.sync.aligned.m8n8.x" #NUM TRANS ".shared.b16 " OUTS ", [%" #NUM "];\n" \
                 : __VA_ARGS__                                                                    \
                 : "r"(addr));                                                                    \
  }
#else
#define DK_LDMATRIX(NAME, NUM, TRANS, OUTS, ...) \
  __device__ __forceinline__ void NAME(uint32_t r[NUM], const void* row) { DK_MMA_UNSUPPORTED }
#endif
DK_LDMATRIX(ldmatrix_x1, 1, "", "{%0}", "=r"(r[0]))
DK_LDMATRIX(ldmatrix_x2, 2, "", "{%0,%1}", "=r"(r[0]), "=r"(r[1]))
DK_LDMATRIX(ldmatrix_x4, 4, "", "{%0,%1,%2,%3}", "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]))
DK_LDMATRIX(ldmatrix_x1_trans, 1, ".trans", "{%0}", "=r"(r[0]))
DK_LDMATRIX(ldmatrix_x2_trans, 2, ".trans", "{%0,%1}", "=r"(r[0]), "=r"(r[1]))
DK_LDMATRIX(ldmatrix_x4_trans, 4, ".trans", "{%0,%1,%2,%3}", "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]))
#undef DK_LDMATRIX
#undef DK_MMA_UNSUPPORTED

#endif

}  // namespace dk::cuda
