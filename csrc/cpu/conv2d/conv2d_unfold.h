#pragma once
// Row copies that build the shifted GEMM's unfolded input buffer (conv2d_shifted_plan.h), per ISA.
// Rows are short (an image's width, often 10-60 values), so the per-row cost decides: the
// AVX-512 version copies each row with full vectors and one masked tail, no scalar loop.
#include <cstdint>

// Only an AVX-512 copy exists (the portable path copies rows in conv2d_shifted_plan.h), so the
// declarations name that copy's namespace (cpu/common/isa.h) directly.
namespace dk::cpu::isa_avx512::conv2d {

// For each of `rows` input rows (src, pitch `ld_src`) and each tap column j < kw: values
// src[off[j] + lo[j] .. off[j] + hi[j]) go to dst + j*plane + [lo[j], hi[j]) (dst pitch ld_dst).
// The rest of those rows must be zero already and stays zero (whole-vector stores may write
// zeros there); nothing past the `rows` rows of each plane is written.
// Only called when best_isa() == Avx512 (conv2d_unfold_avx512.cpp).
template <typename T>
void unfold_rows(const T* src, int64_t ld_src, int64_t rows, T* dst, int64_t ld_dst, int64_t plane, int64_t kw,
                 const int64_t* lo, const int64_t* hi, const int64_t* off);

// The whole planes (a row phase's rows of one channel, all kw tap columns, with their padding
// columns written as zeros) for a padded width W + 2*pw of at most two vectors: each input row
// is loaded once and its windows cut out with lane permutes, instead of kw loads. dst is tap
// column 0's plane at the first row (pitch ld_dst = the output width); nothing past the `rows`
// rows of each plane is written. Returns false (nothing done) when the rows are wider.
template <typename T>
bool unfold_rows_narrow(const T* src, int64_t ld_src, int64_t rows, T* dst, int64_t ld_dst, int64_t plane, int64_t kw,
                        int64_t dw, int64_t pw, int64_t W);

// unfold_rows_narrow for column stride 2 (conv2d_shifted.h, shifted_unfold2_fits): plane j holds
// xpad[2*ow + j*dw]. The padded row (at most four vectors) is split into its even and odd lanes by
// permutes, and each tap column's window cut from one of the two. All of each plane's `rows` rows
// are written, zeros included. Returns false (nothing done) when the row is wider than four vectors,
// the output wider than two, or a window starts past the first vector of its half.
template <typename T>
bool unfold_rows_narrow2(const T* src, int64_t ld_src, int64_t rows, T* dst, int64_t ld_dst, int64_t plane, int64_t kw,
                         int64_t dw, int64_t pw, int64_t W);

}  // namespace dk::cpu::isa_avx512::conv2d
