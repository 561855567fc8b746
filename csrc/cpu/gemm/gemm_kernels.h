#pragma once
// Micro-kernels of the packed GEMM (gemm.cpp) and the blocking that goes with each. With
// gemm_pack.h this is also the GEMM family's interface for GEMMs fused into other kernels, which
// gemm.h's one-call form cannot express: the convolution's shifted GEMM reads B rows in place
// (conv2d_shifted_plan.h) and the LSTM packs its weights once per sequence (lstm_gemm.cpp).
//
// A micro-kernel computes one MR x NR tile of C from packed panels:
//   acc[i][j] = sum_k Ap[k*MR + i] * Bp[k*NR + j]        (k < kc)
//   C[i*ldc + j] = alpha * acc[i][j] + beta * C[i*ldc + j]   (beta == 0: C is not read)
// Panels are zero-padded to full MR / NR by the packing routines, so the kernel always
// computes a full tile; gemm.cpp routes edge tiles through a local buffer.
//
// One kernel per instruction set, each in its own translation unit compiled with that
// ISA's flags (gemm_avx2.cpp, gemm_avx512.cpp) plus a portable one (gemm_generic.cpp), each in
// its own namespace (cpu/common/isa.h).
#include <cstdint>

#include "cpu/common/isa.h"

namespace dk::cpu {

template <typename T>
using GemmMicroKernel = void (*)(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, T alpha, T beta);

// Transposing pack of one panel: dst[k*P + r] = src[r][k] for r < rows, k < kc, and 0 for
// rows <= r < P (P <= kMaxPanel). Rows come as pointers, so A rows may sit at arbitrary offsets. Packing row-major A
// (or transposed B) is exactly this; a scalar loop does it at about one element per cycle, which costs as much as the
// FMAs when M (or N) is small, so the SIMD ISAs transpose 8x8 (4x4) register blocks instead.
constexpr int kMaxPanel = 32;

template <typename T>
using PackTransposed = void (*)(int64_t rows, int64_t kc, const T* const* src, int P, T* dst);

// The same tile, but row k of B is read in place at base + offs[k] (NR contiguous values) instead
// of from a packed panel: a stride-1 convolution's im2col matrix is the padded input shifted by
// one offset per (channel, tap), so it never has to be built (conv2d_shifted_plan.h).
template <typename T>
using GemmShiftedKernel = void (*)(int64_t kc, const T* Ap, const T* base, const int64_t* offs, T* C, int64_t ldc,
                                   T alpha, T beta);

// C (MR x NR, or MR x NR/2 for the half variant) = alpha * A * Bp + beta * C with row i of A at
// a_rows[i] (kc contiguous values each) and Bp a packed B panel (row k at Bp + k*width).
template <typename T>
using GemmRowsKernel = void (*)(int64_t kc, const T* const* a_rows, const T* Bp, T* C, int64_t ldc, T alpha, T beta);

template <typename T>
struct GemmKernel {
  int mr, nr;          // register tile
  int64_t mc, kc, nc;  // cache blocks: A block mc x kc, B block kc x nc (in L2)
  GemmMicroKernel<T> fn;
  const char* name;
  PackTransposed<T> pack_t;
  GemmShiftedKernel<T> fn_shifted;
  // fn_shifted on an MR x NR/2 tile (C gets NR/2 columns): the last panel of an output whose
  // length is not a multiple of NR computes half as many dropped columns (conv2d_shifted_plan.h).
  GemmShiftedKernel<T> fn_shifted_half;
  // A rows by pointer (a convolution's weight gradient reads im2col rows in place): full and half width
  GemmRowsKernel<T> fn_rows, fn_rows_half;
  // fn with 4-row panels (packed with MR = 4): a caller whose M splits into 4-row panels more
  // evenly than into MR-row ones (the LSTM's batch rows between threads, lstm_gemm.h).
  GemmMicroKernel<T> fn_mr4;
};

// The kernel for best_isa() (DEEPKERN_CPU_ISA caps it), chosen once.
template <typename T>
const GemmKernel<T>& gemm_kernel();

// gemm (gemm.h) with op(A) = A (no transpose) whose row i starts at A + a_rows[i] instead of
// A + i*lda: row i of an im2col matrix is the phase-split padded input from one offset on
// (conv2d_shifted_plan.h), so convolution weight gradients need no im2col matrix either.
template <typename T>
void gemm_offset_rows_a(bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const int64_t* a_rows,
                        const T* B, int64_t ldb, T beta, T* C, int64_t ldc, bool parallel = true);

// C[c_rows[i] + j] += alpha * (op(A) op(B))[i][j] on the calling thread: rows of C at arbitrary offsets,
// which may overlap (each tile is added in turn). A convolution's dx adds w^T dy's rows into its padded
// input at one offset per (channel, tap) this way (conv2d_shifted_backward.cpp), straight from each
// tile instead of through a column matrix.
template <typename T>
void gemm_add_to_rows(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                      const T* B, int64_t ldb, T* C, const int64_t* c_rows);

}  // namespace dk::cpu

// Each ISA's kernel table, and its transposing pack (generic: scalar; avx2: 8x8 / 4x4 register
// blocks, which the AVX-512 table reuses).
DK_ISA_DECLARE(namespace gemm {
  template <typename T>
  GemmKernel<T> kernel_table();
  template <typename T>
  void pack_transposed(int64_t rows, int64_t kc, const T* const* src, int P, T* dst);
})
