#pragma once
// The shifted-GEMM convolution's plan (conv2d_shifted.h describes the method): the padded or
// unfolded input buffers, the output panels and the tile loops, shared by the forward
// (conv2d_shifted_forward.cpp) and the two gradients (conv2d_shifted_backward.cpp; dx is a
// transposed convolution on the same machinery). Portable code: it calls the per-ISA micro-kernels
// through GemmKernel's function pointers, so it is never compiled with ISA flags.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/common/cpu_features.h"
#include "cpu/common/parallel.h"
#include "cpu/conv2d/conv2d_im2col.h"
#include "cpu/conv2d/conv2d_phase_rows.h"
#include "cpu/conv2d/conv2d_scratch.h"
#include "cpu/conv2d/conv2d_shifted.h"
#include "cpu/conv2d/conv2d_unfold.h"
#include "cpu/gemm/gemm.h"
#include "cpu/gemm/gemm_kernels.h"
#include "cpu/gemm/gemm_pack.h"

namespace dk::cpu::shifted_detail {

// Inner-dimension block: kc rows of B (each NR values) stay in L1 while all MR-row panels of
// the weights pass over them.
inline constexpr int64_t kShiftKc = 256;
// Output panels per chunk: the chunk's GEMM result (Kp x 32 panels x NR) is compacted while in L2.
inline constexpr int64_t kChunkPanels = 32;
// The phase layout written in place (Wq == Wo: 1x1 kernels on outputs too small for the gather + GEMM of
// conv2d_pointwise_gather.h, which the resnet 1x1/2 downsample measured below now takes): blocks of
// about 128 taps (filled lazily, so a block's buffer part is in L2 when read), and chunks whose
// output (Kp x chunk x NR, revisited once per block) fits kInplaceChunkBytes. resnet's 1x1/2
// 256 -> 512: 2 blocks of 128 and chunks of 8 panels, ~5% less CPU time than 1 block of 256 and
// chunks of 32 (in-process A/B); the stem (one block of 148, row tiles) lost 13% in 2 blocks.
inline constexpr int64_t kInplaceKc = 128;
inline constexpr int64_t kInplaceChunkBytes = int64_t(1) << 19;
// Tiles that write y in place (row tiles, run_inplace) run in groups of this many, each MR-row panel
// of the weights over the whole group before the next panel: the stores then go to MR output channel
// planes at a time. Tile by tile, every tile stored into all K planes (K pages apart), which cost the
// stem 7x7/2 (K = 64) ~15% of its CPU time and an unfolded 7x7 on 3 channels ~10-17%; the same
// tile order storing into a small buffer was as fast as the groups, so it is the stores (K streams of
// store misses at once), not the weights' reuse. Groups of 4 to 56 tiles measured alike. run_inplace
// groups only its first kc block: later blocks store into the chunk while it is in L2. (run_panels'
// tiles store into an L2 buffer: grouping them measured no gain.)
inline constexpr int64_t kTileGroup = 8;

// dst[0, n) = src[0, n) for the short rows of small images: whole 32-byte blocks by fixed-size
// copies, which compile to a few moves (a memcpy call per 10-float row costs more than the copy),
// and the tail by one overlapping block.
template <typename T>
inline void copy_short(T* dst, const T* src, int64_t n) {
  constexpr int64_t B = 32 / sizeof(T);
  if (n < B) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
    return;
  }
  int64_t i = 0;
  for (; i + B <= n; i += B) std::memcpy(dst + i, src + i, 32);
  if (i < n) std::memcpy(dst + n - B, src + n - B, 32);
}

// A sample whose phase buffer the GEMM loops fill as they go (Shifted::lazy_pad): channels
// [0, done) are in xp.
template <typename T>
struct LazyPad {
  const T* x_n;
  T* xp;
  int64_t done = 0;
};

template <typename T>
struct Shifted {
  const Conv2dParams& p;
  const GemmKernel<T>& kr;
  bool unfold;                                         // layout of the input buffer: see shifted_unfold_pays
  bool avx512 = best_isa() == Isa::Avx512;             // row copies for the unfolded buffer
  const PhaseRows<T>& rows_isa = PhaseRows<T>::get();  // stride-2 row splits and merges
  int64_t Hq, Wq, plane;         // one plane of the buffer; Wq is also the pitch of the q numbering
  int64_t Q, Qp;                 // output positions in phase-width numbering, rounded up to NR
  int64_t Kp;                    // output channels rounded up to MR
  int64_t kin;                   // inner dimension: C*kh*kw, + 1 for the bias tap
  int64_t kcb;                   // inner-dimension block (about kShiftKc, blocks of equal size)
  int64_t chunk = kChunkPanels;  // run_inplace's panels per chunk
  int64_t ones_off = -1;         // the bias tap's row of ones in the input buffer (-1: none)
  int64_t slots;                 // channels the unfolded buffer holds: C, or a ring of fewer (constructor)
  int64_t xlen;                  // phase buffer length incl. the slack the last panel reads
  std::vector<int64_t> offs;
  std::vector<char> phase_used;  // e.g. a 1x1 stride-2 kernel reads only phase (0, 0)
  std::vector<T> Ap;             // weights packed per kc block: block at pc*Kp, panel ir at + ir*kc

  // w == nullptr: geometry only (the weight gradient needs no packed weights).
  // allow_unfold: false where the caller needs the phase layout (the strided dx scatters into it).
  // bias: added by the GEMM itself, as one more tap (weight b[k]) reading a row of ones, so no
  // pass over y (which, for large outputs, has left L1/L2 or even waits on its stores to drain).
  // lazy: the caller fills the buffer with LazyPad, one sample at a time per thread (slots).
  Shifted(const Conv2dParams& p_, const T* w, bool allow_unfold = true, const T* bias = nullptr, bool lazy = false)
      : p(p_), kr(gemm_kernel<T>()) {
    Hq = shifted_phase_size(p.H + 2 * p.ph, p.sh);
    unfold = allow_unfold && shifted_unfold_pays(p, kr.mr, kr.nr, sizeof(T), shifted_workers(p, num_threads()));
    Wq = unfold ? p.Wo : shifted_phase_size(p.W + 2 * p.pw, p.sw);
    plane = Hq * Wq;
    Q = (p.Ho - 1) * Wq + p.Wo;
    Qp = (Q + kr.nr - 1) / kr.nr * kr.nr;
    Kp = (p.K + kr.mr - 1) / kr.mr * kr.mr;
    const int64_t crs = p.crs();
    kin = crs + (w && bias ? 1 : 0);
    // equal blocks: a short last block would pay the tile's load/store for few multiply-adds
    // (counted without the bias tap: 256 taps + bias stay one block)
    const bool inplace_phase = !unfold && Wq == p.Wo;
    const int64_t kc_target = inplace_phase ? kInplaceKc : kShiftKc;
    const int64_t blocks = (crs + kc_target - 1) / kc_target;
    if (inplace_phase)
      chunk = std::clamp<int64_t>(kInplaceChunkBytes / (Kp * kr.nr * int64_t(sizeof(T))), 1, kChunkPanels);
    kcb = std::max<int64_t>(1, (kin + blocks - 1) / blocks);
    slots = p.C;
    // Filled lazily, the stride-2 unfolded buffer needs only the channels of one kc block at a
    // time: channel c goes to slot c % slots, so the buffer (resnet's 3x3/2: 0.5 MB instead of 2.5)
    // stays in L2 from one block and sample to the next instead of being written back and re-read
    // from memory. The tiles then run block by block over all panels (one chunk).
    if (lazy && unfold && p.sw == 2 && kin > kcb) {
      slots = std::min(p.C, (kcb + p.kh * p.kw - 1) / (p.kh * p.kw) + 1);
      chunk = (Qp + kr.nr - 1) / kr.nr;
    }
    offs.resize(kin);
    phase_used.assign(size_t(p.sh * p.sw), 0);
    int64_t max_off = 0;
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j) {
          // tap (i, j) reads padded row oh*sh + i*dh = (oh + i*dh/sh)*sh + (i*dh % sh): phase row
          // oh + i*dh/sh of phase i*dh % sh (likewise for columns, unless unfolded)
          int64_t o;
          if (unfold) {
            const int64_t a = i * p.dh % p.sh;
            o = ((a * slots + c % slots) * p.kw + j) * plane + (i * p.dh / p.sh) * Wq;
            phase_used[size_t(a)] = 1;
          } else {
            const int64_t phase = (i * p.dh % p.sh) * p.sw + (j * p.dw % p.sw);
            o = (phase * p.C + c) * plane + (i * p.dh / p.sh) * Wq + (j * p.dw / p.sw);
            phase_used[size_t(phase)] = 1;
          }
          offs[(c * p.kh + i) * p.kw + j] = o;
          max_off = std::max(max_off, o);
        }
    // + NR: a row's partial last tile (row_tiles()) reads up to NR - 1 columns past Q
    xlen = std::max(buffer_planes() * plane, max_off + Qp + kr.nr);
    if (!w) return;
    const T* a = w;
    std::vector<T> wb;  // [w | b], K x (C*kh*kw + 1)
    if (kin > crs) {
      ones_off = offs[size_t(crs)] = xlen;
      xlen += Qp + kr.nr;
      wb.resize(size_t(p.K * kin));
      for (int64_t k = 0; k < p.K; ++k) {
        std::copy(w + k * crs, w + (k + 1) * crs, wb.begin() + k * kin);
        wb[size_t(k * kin + crs)] = bias[k];
      }
      a = wb.data();
    }
    Ap.resize(size_t(Kp * kin));
    for (int64_t pc = 0; pc < kin; pc += kcb) {
      const int64_t kc = std::min(kcb, kin - pc);
      pack_a(false, p.K, kc, a + pc, kin, kr.mr, Ap.data() + pc * Kp, kr.pack_t);
    }
  }

  // Planes in the buffer: (row phase, channel, tap column) unfolded, (row phase, column phase,
  // channel) otherwise.
  int64_t buffer_planes() const { return unfold ? p.sh * slots * p.kw : p.sh * p.sw * p.C; }

  // This thread's input buffer for the call. Unfolded (column stride 1), the padding zeros sit at the
  // same places for every sample, so the buffer is cleared once here and pad() copies only input values.
  // (Threads sharing one buffer: the first clears it before the others start.)
  T* input_buffer(bool clear = true) const {
    T* xp = conv_thread_buffer<T>(kPadSlot, size_t(xlen));
    if (unfold && p.sw == 1 && clear) std::fill(xp, xp + xlen, T(0));
    if (ones_off >= 0) std::fill(xp + ones_off, xp + xlen, T(1));
    return xp;
  }

  // The buffer for channels [c0, c1) of x_n, in the chosen layout (from input_buffer()). The
  // phase layout's slack past the planes is cleared by whoever has c1 == C. [r0, r1): the phase
  // layout's rows to fill (row_band_rows); -1: all of them.
  void pad(const T* x_n, T* xp, int64_t c0, int64_t c1, int64_t r0 = 0, int64_t r1 = -1) const {
    if (unfold && p.sw == 1) {
      unfold_rows(x_n, xp, c0, c1);
      return;
    }
    if (unfold)
      unfold_rows2(x_n, xp, c0, c1);
    else
      pad_phases(x_n, xp, c0, c1, r0, r1 < 0 ? Hq : r1);
    if (c1 == p.C) std::fill(xp + buffer_planes() * plane, xp + (ones_off >= 0 ? ones_off : xlen), T(0));
  }

  // The phase layout with several kc blocks: each block's channels are copied into the buffer
  // just before the block's first use (pad_for_block), so the kernel reads them from L2 (the
  // whole buffer can exceed L2: 1.7 MB for resnet's 3x3/2 on 128 channels).
  bool lazy_pad() const { return (!unfold || p.sw == 2) && kin > kcb; }

  // With lp: pad the channels kc block [pc, pc_end) reads that are not in the buffer yet.
  void pad_for_block(LazyPad<T>* lp, int64_t pc_end) const {
    if (!lp) return;
    const int64_t c1 = std::min(p.C, (std::min(pc_end, p.crs()) - 1) / (p.kh * p.kw) + 1);
    if (c1 <= lp->done) return;
    pad(lp->x_n, lp->xp, lp->done, c1);
    lp->done = c1;
  }

  // Unfolded, column stride 2 (shifted_unfold2_fits): whole planes, padding rows and columns
  // included, so nothing needs clearing first (input_buffer).
  void unfold_rows2(const T* x_n, T* xp, int64_t c0, int64_t c1) const {
    const int64_t sh = p.sh, ph = p.ph, H = p.H, W = p.W, kw = p.kw, wq = Wq, pl = plane;
    for (int64_t a = 0; a < sh; ++a) {
      if (!phase_used[size_t(a)]) continue;  // never read
      const int64_t r_lo = std::min(Hq, std::max<int64_t>(0, (ph - a + sh - 1) / sh)),
                    r_hi = std::max(r_lo, std::min(Hq, (H + ph - a + sh - 1) / sh));
      for (int64_t c = c0; c < c1; ++c) {
        const T* src = x_n + c * H * W;
        T* dst = xp + (a * slots + c % slots) * kw * pl;
        for (int64_t j = 0; j < kw; ++j) {
          std::fill(dst + j * pl, dst + j * pl + r_lo * wq, T(0));
          std::fill(dst + j * pl + r_hi * wq, dst + (j + 1) * pl, T(0));
        }
        if (r_hi == r_lo) continue;
        const T* row0 = src + (r_lo * sh + a - ph) * W;
        if (avx512 && isa_avx512::conv2d::unfold_rows_narrow2(row0, sh * W, r_hi - r_lo, dst + r_lo * wq, wq, pl, kw,
                                                              p.dw, p.pw, W))
          continue;
        for (int64_t r = r_lo; r < r_hi; ++r)  // not taken where shifted_unfold2_fits holds
          for (int64_t j = 0; j < kw; ++j)
            for (int64_t ow = 0; ow < wq; ++ow) {
              const int64_t iw = 2 * ow + j * p.dw - p.pw;
              dst[j * pl + r * wq + ow] = iw >= 0 && iw < W ? src[(r * sh + a - ph) * W + iw] : T(0);
            }
      }
    }
  }

  // Unfolded: plane (a, c, j) holds, at (r, ow), xpad[c][r*sh + a][ow + j*dw]: the input row
  // seen by output column ow through tap column j. Output positions are numbered q = oh*Wo + ow.
  // Only the input values are copied (input_buffer() zeroed the rest), straight from x: going
  // through a padded row would re-read just-stored data at other offsets and stall store forwarding.
  void unfold_rows(const T* x_n, T* xp, int64_t c0, int64_t c1) const {
    const int64_t sh = p.sh, ph = p.ph, H = p.H, W = p.W, kw = p.kw, wq = Wq, pl = plane;  // sw == 1 (unfold_pays)
    int64_t lo[64], hi[64], off[64];  // per tap column; kw > 64 takes the phase layout (unfold_pays)
    for (int64_t j = 0; j < kw; ++j) {
      valid_ow(p, j, lo[j], hi[j]);
      off[j] = j * p.dw - p.pw;
    }
    for (int64_t a = 0; a < sh; ++a) {
      if (!phase_used[size_t(a)]) continue;  // never read
      // rows r with input row h = r*sh + a - ph inside [0, H)
      const int64_t r_lo = std::max<int64_t>(0, (ph - a + sh - 1) / sh),
                    r_hi = std::min(Hq, (H + ph - a + sh - 1) / sh);
      for (int64_t c = c0; c < c1; ++c) {
        const T* src = x_n + c * H * W;
        T* dst = xp + (a * p.C + c) * kw * pl;
        if (avx512 && r_hi > r_lo) {
          const T* row0 = src + (r_lo * sh + a - ph) * W;
          if (!isa_avx512::conv2d::unfold_rows_narrow(row0, sh * W, r_hi - r_lo, dst + r_lo * wq, wq, pl, kw, p.dw,
                                                      p.pw, W))
            isa_avx512::conv2d::unfold_rows(row0, sh * W, r_hi - r_lo, dst + r_lo * wq, wq, pl, kw, lo, hi, off);
          continue;
        }
        for (int64_t r = r_lo; r < r_hi; ++r) {
          const T* in = src + (r * sh + a - ph) * W;
          for (int64_t j = 0; j < kw; ++j) {
            T* row = dst + j * pl + r * wq;
            copy_short(row + lo[j], in + off[j] + lo[j], hi[j] - lo[j]);
          }
        }
      }
    }
  }

  // Channels [c0, c1) of x_n into the zero-padded phase planes: phase (a, b) holds
  // xpad[r*sh + a][t*sw + b] at (r, t).
  void pad_phases(const T* x_n, T* xp, int64_t c0, int64_t c1, int64_t r0, int64_t r1) const {
    if (p.sw == 2) {
      pad_phases2(x_n, xp, c0, c1, r0, r1);
      return;
    }
    for (int64_t a = 0; a < p.sh; ++a)
      for (int64_t bb = 0; bb < p.sw; ++bb) {
        const int64_t phase = a * p.sw + bb;
        // Never read by a kept column. Only the forward's rounding columns (q >= Q, dropped) can
        // run past a plane's end into it; the weight gradient reads q < Q, always inside a plane.
        if (!phase_used[size_t(phase)]) continue;
        // phase columns t with input column t*sw + bb - pw inside [0, W)
        const int64_t off = bb - p.pw;
        const int64_t t_lo = std::min(Wq, off >= 0 ? 0 : (-off + p.sw - 1) / p.sw);
        const int64_t t_hi = std::max(t_lo, std::min(Wq, (p.W - off + p.sw - 1) / p.sw));
        for (int64_t c = c0; c < c1; ++c) {
          T* dst = xp + (phase * p.C + c) * plane;
          const T* src = x_n + c * p.in_plane();
          for (int64_t r = r0; r < r1; ++r) {
            T* row = dst + r * Wq;
            const int64_t h = r * p.sh + a - p.ph;
            if (h < 0 || h >= p.H) {
              std::fill(row, row + Wq, T(0));
              continue;
            }
            const T* s = src + h * p.W + off;
            std::fill(row, row + t_lo, T(0));
            if (p.sw == 1)
              std::memcpy(row + t_lo, s + t_lo, sizeof(T) * (t_hi - t_lo));
            else
              for (int64_t t = t_lo; t < t_hi; ++t) row[t] = s[t * p.sw];
            std::fill(row + t_hi, row + Wq, T(0));
          }
        }
      }
  }

  // pad_phases for column stride 2: each input row is read once and split into its even and odd
  // columns (per-ISA vector permutes) instead of two strided scalar passes.
  void pad_phases2(const T* x_n, T* xp, int64_t c0, int64_t c1, int64_t r0, int64_t r1) const {
    // x column w lands in column phase (w + pw) % 2 at phase column (w + pw) / 2
    const int64_t be = p.pw % 2, bo = 1 - be, te = p.pw / 2, to = (p.pw + 1) / 2;
    const int64_t ne = (p.W + 1) / 2, no = p.W / 2;
    for (int64_t a = 0; a < p.sh; ++a) {
      const bool use_e = phase_used[size_t(a * 2 + be)], use_o = phase_used[size_t(a * 2 + bo)];
      if (!use_e && !use_o) continue;
      for (int64_t c = c0; c < c1; ++c) {
        T* de = xp + ((a * 2 + be) * p.C + c) * plane;
        T* dd = xp + ((a * 2 + bo) * p.C + c) * plane;
        const T* src = x_n + c * p.in_plane();
        for (int64_t r = r0; r < r1; ++r) {
          T* re = de + r * Wq;
          T* ro = dd + r * Wq;
          const int64_t h = r * p.sh + a - p.ph;
          if (h < 0 || h >= p.H) {
            if (use_e) std::fill(re, re + Wq, T(0));
            if (use_o) std::fill(ro, ro + Wq, T(0));
            continue;
          }
          rows_isa.split2(src + h * p.W, p.W, re + te, use_o ? ro + to : nullptr);
          if (use_e) {
            std::fill(re, re + te, T(0));
            std::fill(re + te + ne, re + Wq, T(0));
          }
          if (use_o) {
            std::fill(ro, ro + to, T(0));
            std::fill(ro + to + no, ro + Wq, T(0));
          }
        }
      }
    }
  }

  // yt[:, q - j0*NR] for NR-panels [j0, j1) of q (q < Q); yt has leading dimension ld. A last
  // panel with at most NR/2 columns left is computed half width.
  void gemm_panels(const T* xp, T* yt, int64_t ld, int64_t j0, int64_t j1, LazyPad<T>* lp) const {
    for (int64_t pc = 0; pc < kin; pc += kcb) {
      const int64_t kc = std::min(kcb, kin - pc);
      pad_for_block(lp, pc + kc);
      const T beta = pc == 0 ? T(0) : T(1);
      const T* ablock = Ap.data() + pc * Kp;
      for (int64_t jr = j0 * kr.nr; jr < j1 * kr.nr; jr += kr.nr) {
        const GemmShiftedKernel<T> fn = Q - jr <= kr.nr / 2 ? kr.fn_shifted_half : kr.fn_shifted;
        for (int64_t ir = 0; ir < Kp; ir += kr.mr)
          fn(kc, ablock + ir * kc, xp + jr, offs.data() + pc, yt + ir * ld + (jr - j0 * kr.nr), ld, T(1), beta);
      }
    }
  }

  // When every output row is a whole number of NR-wide tiles (and K of MR-high ones), tiles can
  // follow the output rows: the kernel then writes y_n in place and no column is computed and
  // dropped (e.g. 32x32 outputs: saves the 34/32 padded width and the compaction pass).
  // Column strides may end each row with a partial tile and K with a partial panel (shifted_row_tiles).
  bool row_tiles() const { return !unfold && shifted_row_tiles(p, kr.mr, kr.nr); }
  int64_t tiles_per_row() const { return (p.Wo + kr.nr - 1) / kr.nr; }
  int64_t row_tile_count() const { return p.Ho * tiles_per_row(); }

  // The phase rows [r0, r1) that output rows [oh0, oh1) read through row tiles: tap row i reads
  // phase row oh + i*dh/sh, and a row's partial last tile may run past the row's end into the next
  // one (columns of the tile that are dropped).
  void row_band_rows(int64_t oh0, int64_t oh1, int64_t& r0, int64_t& r1) const {
    r0 = oh0;
    r1 = std::min(Hq, oh1 + (p.kh - 1) * p.dh / p.sh + 1);
  }

  // Row tiles [t0, t1) (tile t: output row t / tiles_per_row(), columns (t % tiles_per_row()) * NR
  // + [0, NR), the row's last tile possibly partial: NR/2 wide in place, or through a local tile).
  void run_row_tiles(const T* xp, T* y_n, int64_t t0, int64_t t1, LazyPad<T>* lp = nullptr) const {
    const int64_t per_row = tiles_per_row(), P = p.out_plane(), nr = kr.nr, mr = kr.mr;
    alignas(64) T edge[kMaxPanel * kMaxPanel];
    for (int64_t pc = 0; pc < kin; pc += kcb) {
      const int64_t kc = std::min(kcb, kin - pc);
      pad_for_block(lp, pc + kc);
      const T beta = pc == 0 ? T(0) : T(1);
      const T* ablock = Ap.data() + pc * Kp;
      for (int64_t g0 = t0; g0 < t1; g0 += kTileGroup) {
        const int64_t g1 = std::min(t1, g0 + kTileGroup);
        for (int64_t ir = 0; ir < p.K; ir += mr) {
          const int64_t rows = std::min(mr, p.K - ir);
          for (int64_t t = g0; t < g1; ++t) {
            const int64_t oh = t / per_row, ow0 = t % per_row * nr, cols = std::min(nr, p.Wo - ow0);
            const T* xq = xp + oh * Wq + ow0;
            T* yq = y_n + oh * p.Wo + ow0;
            if (rows == mr && (cols == nr || cols == nr / 2)) {
              (cols == nr ? kr.fn_shifted : kr.fn_shifted_half)(kc, ablock + ir * kc, xq, offs.data() + pc, yq + ir * P,
                                                                P, T(1), beta);
              continue;
            }
            (cols <= nr / 2 ? kr.fn_shifted_half : kr.fn_shifted)(kc, ablock + ir * kc, xq, offs.data() + pc, edge, nr,
                                                                  T(1), T(0));
            for (int64_t i = 0; i < rows; ++i)
              for (int64_t j = 0; j < cols; ++j)
                yq[(ir + i) * P + j] = edge[i * nr + j] + (pc == 0 ? T(0) : yq[(ir + i) * P + j]);
          }
        }
      }
    }
  }

  // q is y's own numbering: the unfolded layout, or the phase layout when Wq == Wo.
  bool y_numbered() const { return unfold || Wq == p.Wo; }

  // Unfolded layout (or Wq == Wo): q = oh*Wo + ow is y_n's own numbering, so NR-panels [j0, j1) write y_n in
  // place, a chunk of kChunkPanels at a time (it stays in L2 across the kc blocks). Only tiles
  // past the last output position or channel go through a local tile.
  void run_inplace(const T* xp, T* y_n, int64_t j0, int64_t j1, LazyPad<T>* lp) const {
    const int64_t P = p.out_plane(), mr = kr.mr, nr = kr.nr;
    alignas(64) T edge[kMaxPanel * kMaxPanel];
    for (int64_t c0 = j0; c0 < j1; c0 += chunk) {
      const int64_t c1 = std::min(j1, c0 + chunk);
      for (int64_t pc = 0; pc < kin; pc += kcb) {
        const int64_t kc = std::min(kcb, kin - pc);
        pad_for_block(lp, pc + kc);
        const T beta = pc == 0 ? T(0) : T(1);
        const T* ablock = Ap.data() + pc * Kp;
        auto tile = [&](int64_t q0, int64_t ir) {
          const int64_t cols = std::min(nr, P - q0), rows = std::min(mr, p.K - ir);
          T* c = y_n + ir * P + q0;
          if (rows == mr && cols == nr) {
            kr.fn_shifted(kc, ablock + ir * kc, xp + q0, offs.data() + pc, c, P, T(1), beta);
            return;
          }
          // the last panel: a half-width tile when half the panel is enough
          (cols <= nr / 2 ? kr.fn_shifted_half : kr.fn_shifted)(kc, ablock + ir * kc, xp + q0, offs.data() + pc, edge,
                                                                nr, T(1), T(0));
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) c[i * P + j] = edge[i * nr + j] + (pc == 0 ? T(0) : c[i * P + j]);
        };
        // the first block's stores miss (groups); later blocks find the chunk in L2 and reuse each
        // tile's input rows from L1 across the panels (tile by tile)
        const int64_t group = pc == 0 ? kTileGroup : 1;
        for (int64_t g0 = c0; g0 < c1; g0 += group) {
          const int64_t g1 = std::min(c1, g0 + group);
          for (int64_t ir = 0; ir < Kp; ir += mr)
            for (int64_t q0 = g0 * nr; q0 < g1 * nr; q0 += nr) tile(q0, ir);
        }
      }
    }
  }

  // One sample's output panels [j0, j1), whichever layout.
  void run(const T* xp, T* y_n, int64_t j0, int64_t j1, LazyPad<T>* lp = nullptr) const {
    if (y_numbered())
      run_inplace(xp, y_n, j0, j1, lp);
    else
      run_panels(xp, y_n, j0, j1, lp);
  }

  // Panels [j0, j1) of sample y_n, a chunk of kChunkPanels at a time through a per-thread
  // buffer that stays in L2: GEMM, then the kept columns to y_n.
  void run_panels(const T* xp, T* y_n, int64_t j0, int64_t j1, LazyPad<T>* lp) const {
    const int64_t ld = kChunkPanels * kr.nr;
    T* yt = conv_thread_buffer<T>(kOutSlot, size_t(Kp * ld));
    for (int64_t c0 = j0; c0 < j1; c0 += kChunkPanels) {
      const int64_t c1 = std::min(j1, c0 + kChunkPanels);
      gemm_panels(xp, yt, ld, c0, c1, lp);
      compact(yt, ld, c0 * kr.nr, std::min(Q, c1 * kr.nr), y_n);
    }
  }

  // dy_n in phase-width numbering, zero in the dropped columns: dyq[k*Q + oh*Wq + ow].
  void spread(const T* dy_n, T* dyq, int64_t k0, int64_t k1) const {
    for (int64_t k = k0; k < k1; ++k) {
      T* dst = dyq + k * Q;
      for (int64_t oh = 0; oh < p.Ho; ++oh) {
        std::memcpy(dst + oh * Wq, dy_n + (k * p.Ho + oh) * p.Wo, sizeof(T) * p.Wo);
        if (oh + 1 < p.Ho) std::fill(dst + oh * Wq + p.Wo, dst + (oh + 1) * Wq, T(0));
      }
    }
  }

  // dx_n[c][h][w] = the phase buffer's value at padded (h + ph, w + pw), channels [c0, c1): the
  // inverse of pad() over the unpadded region.
  void unpad(const T* gp, T* dx_n, int64_t c0, int64_t c1) const {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t h = 0; h < p.H; ++h) {
        const int64_t hp = h + p.ph, a = hp % p.sh, r = hp / p.sh;
        T* dst = dx_n + (c * p.H + h) * p.W;
        if (p.sw == 1) {
          std::memcpy(dst, gp + (a * p.C + c) * plane + r * Wq + p.pw, sizeof(T) * p.W);
          continue;
        }
        if (p.sw == 2) {  // x column w is phase column (w + pw) / 2 of column phase (w + pw) % 2
          const int64_t be = p.pw % 2, bo = 1 - be;
          rows_isa.merge2(gp + ((a * 2 + be) * p.C + c) * plane + r * Wq + p.pw / 2,
                          gp + ((a * 2 + bo) * p.C + c) * plane + r * Wq + (p.pw + 1) / 2, p.W, dst);
          continue;
        }
        for (int64_t b = 0; b < p.sw; ++b) {  // columns w = t*sw + b - pw of phase b
          const T* src = gp + ((a * p.sw + b) * p.C + c) * plane + r * Wq;
          const int64_t off = b - p.pw;
          const int64_t t_lo = off >= 0 ? 0 : (-off + p.sw - 1) / p.sw;
          for (int64_t t = t_lo, w = t_lo * p.sw + off; w < p.W; ++t, w += p.sw) dst[w] = src[t];
        }
      }
  }

  // y_n[k][oh][ow] = yt[k][q - q0] for the kept q = oh*Wq + ow (ow < Wo) in [q0, q1).
  void compact(const T* yt, int64_t ld, int64_t q0, int64_t q1, T* y_n) const {
    for (int64_t k = 0; k < p.K; ++k) {
      for (int64_t oh = q0 / Wq; oh <= (q1 - 1) / Wq && oh < p.Ho; ++oh) {
        const int64_t lo = std::max<int64_t>(0, q0 - oh * Wq), hi = std::min(p.Wo, q1 - oh * Wq);
        const T* src = yt + k * ld + oh * Wq - q0;
        T* dst = y_n + (k * p.Ho + oh) * p.Wo;
        if (hi > lo) std::memcpy(dst + lo, src + lo, sizeof(T) * size_t(hi - lo));
      }
    }
  }
};

}  // namespace dk::cpu::shifted_detail
