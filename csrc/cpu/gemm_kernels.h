#pragma once
// Micro-kernels of the packed GEMM (gemm.cpp) and the blocking that goes with each.
//
// A micro-kernel computes one MR x NR tile of C from packed panels:
//   acc[i][j] = sum_k Ap[k*MR + i] * Bp[k*NR + j]        (k < kc)
//   C[i*ldc + j] = alpha * acc[i][j] + beta * C[i*ldc + j]   (beta == 0: C is not read)
// Panels are zero-padded to full MR / NR by the packing routines, so the kernel always
// computes a full tile; gemm.cpp routes edge tiles through a local buffer.
//
// One kernel per instruction set, each in its own translation unit compiled with that
// ISA's flags (gemm_avx2.cpp, gemm_avx512.cpp) plus a portable one (gemm_generic.cpp).
#include <cstdint>

namespace dk::cpu {

template <typename T>
using GemmMicroKernel = void (*)(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, T alpha, T beta);

template <typename T>
struct GemmKernel {
  int mr, nr;          // register tile
  int64_t mc, kc, nc;  // cache blocks: A block mc x kc, B block kc x nc (in L2)
  GemmMicroKernel<T> fn;
  const char* name;
};

template <typename T>
GemmKernel<T> gemm_kernel_generic();
template <typename T>
GemmKernel<T> gemm_kernel_avx2();
template <typename T>
GemmKernel<T> gemm_kernel_avx512();

// The kernel for best_isa() (DEEPKERN_CPU_ISA caps it), chosen once.
template <typename T>
const GemmKernel<T>& gemm_kernel();

}  // namespace dk::cpu
