#pragma once
// Convolution as a "shifted GEMM": with the input zero-padded to Hp x Wp and output positions
// numbered q = oh*Wp + ow, row (c, i, j) of the im2col matrix is the padded input read from offset
// c*Hp*Wp + i*dh*Wp + j*dw onwards. The micro-kernel reads those rows in place
// (GemmKernel::fn_shifted), so neither an im2col matrix nor a packed B panel is ever built.
// Columns with ow >= Wo are computed and dropped (Wp/Wo - 1 extra work), unless the output rows are
// whole register tiles, when tiles follow the rows and write y in place (for column strides also
// rows ending in a partial tile: shifted_row_tiles), the padded width already is the output width
// (shifted_phase_inplace), or the input is "unfolded" (see shifted_unfold_pays). Strides: see below.
// The bias is one more GEMM tap (weight b[k]) reading a row of ones.
#include "common/conv_params.h"
#include "cpu/common/cpu_features.h"
#include "cpu/common/parallel.h"

namespace dk::cpu {

// Strides > 1 split the padded input into sh*sw phase images (phase (a, b) holds rows a, a+sh,
// ... and columns b, b+sw, ...); every tap then reads one phase at stride 1, so the same kernel
// serves any stride. Each phase is ceil(padded size / stride) long on each axis.
inline int64_t shifted_phase_size(int64_t padded, int64_t stride) { return (padded + stride - 1) / stride; }

// Used unless the padded-width columns it computes and drops would more than double the work
// (tiny outputs: im2col is cheaper there), or the convolution is a plain GEMM already
// (1x1, stride 1, no padding). Measurements: benchmarks/results/conv.md, "Why the conv2d rules".
inline bool shifted_applies(const Conv2dParams& p) {
  if (p.is_pointwise()) return false;
  // sh*sw phase images: a few are fine (1x1 stride 2 uses one of four), but validated strides go
  // up to 2**40; big strides skip most of the input, which im2col then never touches.
  if (p.sh > 8 || p.sw > 8) return false;
  const int64_t wq = shifted_phase_size(p.W + 2 * p.pw, p.sw);
  const int64_t q = (p.Ho - 1) * wq + p.Wo + 32;  // + one NR panel of rounding
  return q <= 2 * p.Ho * p.Wo;
}

// Column stride 2 can be unfolded too where AVX-512 cuts each input row into its tap columns' windows
// in registers (conv2d_unfold.h, unfold_rows_narrow2): a padded row of at most 4 vectors, an output
// row of at most 2. It then copies 1.5x the input (3x3: the even columns twice) instead of splitting
// it once, but drops no column and writes y in place (resnet's 3x3/2: 784 columns for 811 on the
// phase width, no compaction). Measurements: benchmarks/results/conv.md, "Stride 2 unfolded".
inline bool shifted_unfold2_fits(const Conv2dParams& p, int64_t elem_bytes) {
  const int64_t L = 64 / elem_bytes;
  return p.sw == 2 && best_isa() == Isa::Avx512 && p.W + 2 * p.pw <= 4 * L && p.Wo <= 2 * L && p.kw <= 64 &&
         (p.kw - 1) * p.dw / 2 < L;
}
inline bool shifted_row_tiles(const Conv2dParams& p, int64_t mr, int64_t nr);
inline bool shifted_phase_inplace(const Conv2dParams& p);

// The input buffer's layout. By default the padded input split into stride phases (above), with
// output positions numbered q = oh*Wq + ow on the padded phase width Wq: Wq - Wo of every Wq
// columns are computed and dropped, and the kept ones compacted into y. "Unfolded", plane
// (row phase, c, j) holds for each input row the kw tap columns already shifted, at the output
// width: [r][ow] = xpad[c][r*sh + a][ow*sw + j*dw] (column stride 1, or 2 where
// shifted_unfold2_fits). Then q = oh*Wo + ow is y's own numbering: nothing is dropped (only the
// last panel is rounded up to NR) and tiles write y in place, but building the buffer copies kw
// times the input (kw/2 at stride 2) instead of once. Chosen by a cost model in multiply-adds (the
// GEMM's: computed columns x padded output channels x C*kh*kw), copies priced at 4 per element
// plus 100 per row. Whole row tiles (Wo a multiple of NR, K of MR) drop nothing and keep the phase
// buffer; other column strides keep it too, and so do stride-2 shapes that take row tiles or write
// in place on the phase layout already; at stride 1 with several threads so does a buffer over
// 1 MiB. `workers`: threads that will run. The measurements behind each rule:
// benchmarks/results/conv.md, "Why the conv2d rules" and "Stride 2 unfolded".
inline bool shifted_unfold_pays(const Conv2dParams& p, int64_t mr, int64_t nr, int64_t elem_bytes = 4,
                                int workers = 1) {
  if (p.Wo % nr == 0 && p.K % mr == 0) return false;
  const bool stride2 = shifted_unfold2_fits(p, elem_bytes);
  // other column strides: the row copies would go element by element
  if (p.sw != 1 && !stride2) return false;
  if (stride2 && (shifted_row_tiles(p, mr, nr) || shifted_phase_inplace(p))) return false;
  const int64_t hq = shifted_phase_size(p.H + 2 * p.ph, p.sh), wq = shifted_phase_size(p.W + 2 * p.pw, p.sw);
  // the unfolded buffer is kw times the input: keep it within 8 phase buffers
  if (p.kw * p.Wo > 8 * p.sw * wq || p.kw > 64) return false;
  if (workers > 1 && !stride2 && p.sh * p.C * p.kw * hq * p.Wo * elem_bytes > (int64_t(1) << 20)) return false;
  const double macs = double((p.K + mr - 1) / mr * mr) * double(p.crs());
  const auto round_up = [nr](int64_t q) { return double((q + nr - 1) / nr * nr); };
  const auto copy = [](int64_t rows, int64_t elems) { return 100.0 * double(rows) + 4.0 * double(elems); };
  // phase layout: pad (every row of every used phase) + compact the kept columns into y
  const double phase = round_up((p.Ho - 1) * wq + p.Wo) * macs +
                       copy(p.sh * p.sw * p.C * hq, p.sh * p.sw * p.C * hq * wq) +
                       copy(p.K * p.Ho, p.K * p.out_plane());
  // unfolded: kw windows of every input row inside the padding
  const double unfolded = round_up(p.out_plane()) * macs + copy(p.C * p.kw * p.H, p.C * p.kw * p.H * p.Wo);
  return unfolded < phase;
}

// Phase layout whose padded phase width is the output width (any 1x1 kernel, e.g. the 1x1
// stride-2 downsample): q = oh*Wq + ow already is y's numbering, so tiles write y in place.
inline bool shifted_phase_inplace(const Conv2dParams& p) { return shifted_phase_size(p.W + 2 * p.pw, p.sw) == p.Wo; }

// Phase layout with tiles that follow the output rows and write y in place: whole rows of NR-wide
// tiles, or, for column strides, rows whose last tile is partial (NR/2 wide when that is enough)
// when that computes no more columns per row than the padded phase width (stem 7x7/2: 112 of 115)
// and so saves the dropped columns and the compaction pass; for column strides a last partial
// panel of K goes through the edge tile too (AVX2's MR = 6 against K = 64).
inline bool shifted_row_tiles(const Conv2dParams& p, int64_t mr, int64_t nr) {
  if (p.Wo % nr == 0 && p.K % mr == 0) return true;
  if (p.sw == 1 || shifted_phase_inplace(p)) return false;
  const int64_t rem = p.Wo % nr, cols = p.Wo - rem + (rem == 0 ? 0 : rem <= nr / 2 ? nr / 2 : nr);
  return cols <= shifted_phase_size(p.W + 2 * p.pw, p.sw);
}

// The forward's tiling, as conv2d_plan reports it: "unfolded" (shifted_unfold_pays), and for the
// phase layout "shifted_rowtiles", "shifted_inplace" or "shifted" (panels on the phase width, kept
// columns compacted into y).
inline const char* shifted_forward_layout(const Conv2dParams& p, int64_t mr, int64_t nr, int64_t elem_bytes,
                                          int workers) {
  if (shifted_unfold_pays(p, mr, nr, elem_bytes, workers)) return "unfolded";
  if (shifted_row_tiles(p, mr, nr)) return p.Wo % nr == 0 && p.K % mr == 0 ? "shifted" : "shifted_rowtiles";
  return shifted_phase_inplace(p) ? "shifted_inplace" : "shifted";
}

// Threads the shifted paths use with nt available: all of them when the call has enough work.
inline int shifted_workers(const Conv2dParams& p, int nt) {
  return nt > 1 && threads_for_flops(2.0 * double(p.N * p.K) * double(p.out_plane() * p.crs())) > 1 ? nt : 1;
}

// The weight gradient: whole samples per thread, each reading its im2col rows in place, unless
// there are fewer samples than threads, when the threads split one threaded GEMM per sample.
inline bool shifted_dw_threaded_gemm(const Conv2dParams& p, int nt) { return shifted_workers(p, nt) > 1 && p.N < nt; }

// y = conv(x, w) + b (b may be null).
template <typename T>
void conv2d_forward_shifted(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y);

// dx (N, C, H, W) of sum(y * dy), overwritten; same applicability as the forward. The dropped
// columns contribute w^T * 0, so w must be finite (the caller checks).
template <typename T>
void conv2d_input_grad_shifted(const Conv2dParams& p, const T* w, const T* dy, T* dx);

// dw (K, C, kh, kw) of sum(y * dy), overwritten; same applicability as the forward. x_ns, dy_ns:
// elements from one sample to the next when not C*H*W and K*Ho*Wo (one group of a grouped conv, in place).
template <typename T>
void conv2d_weight_grad_shifted(const Conv2dParams& p, const T* x, const T* dy, T* dw, int64_t x_ns = 0,
                                int64_t dy_ns = 0);

}  // namespace dk::cpu
