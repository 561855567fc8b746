#pragma once
// Packing for the Goto/BLIS GEMM (gemm.cpp). A block of op(A) becomes panels of MR rows,
// k-major (Ap[k*MR + i]); a block of op(B) becomes panels of NR columns (Bp[k*NR + j]).
// Partial panels are zero-padded so the micro-kernel always runs a full tile.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cpu/gemm/gemm_kernels.h"

namespace dk::cpu {

// Rows [0, mc) and columns [0, kc) of op(A), where A already points at the block's origin.
// a_rows (non-transposed A only): row i starts at A + a_rows[i] instead of A + i*lda.
template <typename T>
void pack_a(bool trans, int64_t mc, int64_t kc, const T* A, int64_t lda, int mr, T* Ap, PackTransposed<T> pack_t,
            const int64_t* a_rows = nullptr) {
  for (int64_t i0 = 0; i0 < mc; i0 += mr, Ap += mr * kc) {
    const int64_t rows = mc - i0 < mr ? mc - i0 : mr;
    if (trans && rows == mr && (mr == 8 || mr == 6 || mr == 4)) {
      // whole panels of the kernels' MR: fixed-size copies, which compile to a few vector moves
      const auto panel = [&](auto n) {
        for (int64_t k = 0; k < kc; ++k) std::memcpy(Ap + k * n, A + k * lda + i0, sizeof(T) * n);
      };
      if (mr == 8)
        panel(std::integral_constant<int, 8>());
      else if (mr == 6)
        panel(std::integral_constant<int, 6>());
      else
        panel(std::integral_constant<int, 4>());
    } else if (trans) {  // op(A)[i][k] = A[k*lda + i]: each k gives `rows` contiguous values
      for (int64_t k = 0; k < kc; ++k) {
        const T* src = A + k * lda + i0;
        T* dst = Ap + k * mr;
        int64_t i = 0;
        for (; i < rows; ++i) dst[i] = src[i];
        for (; i < mr; ++i) dst[i] = T(0);
      }
    } else {  // op(A)[i][k] = A[i*lda + k]: a transpose
      const T* src[kMaxPanel];
      for (int64_t i = 0; i < rows; ++i) src[i] = a_rows ? A + a_rows[i0 + i] : A + (i0 + i) * lda;
      pack_t(rows, kc, src, mr, Ap);
    }
  }
}

// Rows [0, kc) and columns [0, nc) of op(B), where B already points at the block's origin.
// pack_a's twin for B: panels run along columns instead of rows, so the two transposes swap.
template <typename T>
void pack_b(bool trans, int64_t kc, int64_t nc, const T* B, int64_t ldb, int nr, T* Bp, PackTransposed<T> pack_t) {
  for (int64_t j0 = 0; j0 < nc; j0 += nr, Bp += nr * kc) {
    const int64_t cols = nc - j0 < nr ? nc - j0 : nr;
    if (!trans) {  // op(B)[k][j] = B[k*ldb + j]: each k gives `cols` contiguous values
      if (cols == nr) {
        for (int64_t k = 0; k < kc; ++k) std::memcpy(Bp + k * nr, B + k * ldb + j0, sizeof(T) * nr);
      } else {
        for (int64_t k = 0; k < kc; ++k) {
          const T* src = B + k * ldb + j0;
          T* dst = Bp + k * nr;
          int64_t j = 0;
          for (; j < cols; ++j) dst[j] = src[j];
          for (; j < nr; ++j) dst[j] = T(0);
        }
      }
    } else {  // op(B)[k][j] = B[j*ldb + k]: a transpose
      const T* src[kMaxPanel];
      for (int64_t j = 0; j < cols; ++j) src[j] = B + (j0 + j) * ldb;
      pack_t(cols, kc, src, nr, Bp);
    }
  }
}

}  // namespace dk::cpu
