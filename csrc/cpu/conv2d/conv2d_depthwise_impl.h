// Depthwise convolution (groups == C, K = m*C: output channel k reads input channel k / m only),
// forward and backward, compiled once per instruction set (cpu/common/isa.h):
// conv2d_depthwise.cpp (portable + dispatch), _avx2.cpp and _avx512.cpp include this file after
// conv2d_depthwise_isa.h, which sets DK_DW_NS inside the copy's DK_ISA_NAMESPACE.
//
// No GEMM: a depthwise layer does kh*kw multiply-adds per output, too few to pack for. Forward:
// one task per (plane, chunk of rows), its input rows first copied into a zero-padded buffer; every
// output column then goes in vector blocks of V outputs that keep their sums in registers across
// all kh*kw taps (4 blocks per pass: independent FMA chains). dx: for stride 1 and K = C the same
// forward on dy with flipped weights; otherwise one task per input plane, each tap of each of its m
// output channels scattered along the row (for stride > 1 into a phase-major buffer, so the scatter
// is contiguous). dw: one task per output channel; the interior columns in
// blocks whose dy vector feeds a kernel row's kw taps (vector accumulators, flushed to double
// once per sample), the edge columns as dot products in lanes. 3x3 stride 2 (dilation 1, padding <= 2)
// goes to the phase kernels instead (conv2d_depthwise_s2_impl.h); the backward of 3x3 stride 1 (K = C)
// to the fused per-plane dx, dw and db (conv2d_depthwise_s1_backward.h).
#include "cpu/conv2d/conv2d_depthwise_isa.h"  // first, in its own include block: DK_DW_NS: this copy's namespace

#include "cpu/conv2d/conv2d_depthwise_common.h"
#include "cpu/conv2d/conv2d_depthwise_rows.h"
#include "cpu/conv2d/conv2d_depthwise_s1_backward.h"
#include "cpu/conv2d/conv2d_depthwise_s2_impl.h"

namespace dk::cpu::DK_DW_NS {

// Over 80 lines: the per-call block table and row chunks, then one task per (plane, chunk of rows).
// Each task first copies its input rows into a zero-padded buffer (when there is padding), so
// every output column goes in vector blocks with all kh*kw taps: no edge columns, no clipped
// tap ranges. The padding zeros are added like the true sum adds them (a non-finite weight
// times a padding zero is NaN there too); the live taps keep their (i, j) order.
template <typename T>
void dw_forward(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  if (s2_phase_applies(p)) return s2_forward<T>(p, x, w, b, y);
  constexpr int V = kDwVecBytes / sizeof(T);
  const int64_t m = p.K / p.C, planes = p.N * p.K, taps = p.kh * p.kw;
  const bool pad = p.ph > 0 || p.pw > 0;
  const int64_t Wp = p.W + 2 * p.pw;  // buffer row length
  // the blocks' first output columns (the last may overlap the one before); none when Wo < V.
  // new[], not std::vector: no std:: template in an ISA copy
  const int64_t nb = p.Wo >= V ? cdiv(p.Wo, V) : 0;
  int64_t* ob = new int64_t[size_t(nb + 1)];
  for (int64_t t = 0; t < nb; ++t) ob[t] = dmin(t * V, p.Wo - V);
  // rows in chunks: enough tasks for the threads, and a chunk's padded input rows in ~128 KiB
  const int64_t want = 4 * int64_t(num_threads());
  int64_t rows_per = planes >= want ? p.Ho : cdiv(p.Ho, dmin(p.Ho, cdiv(want, planes)));
  const int64_t span = (p.kh - 1) * p.dh + 1;
  while (pad && rows_per > 1 && ((rows_per - 1) * p.sh + span) * Wp * int64_t(sizeof(T)) > (int64_t(1) << 17))
    rows_per = cdiv(rows_per, 2);
  const int64_t chunks = cdiv(p.Ho, rows_per);
  const int64_t buf_rows = pad ? (rows_per - 1) * p.sh + span : 0;
  const bool pairs = fwd_pairs(p);
#pragma omp parallel num_threads(team(dw_parallel(p) ? num_threads() : 1))
  {
    T* buf = pad ? new T[size_t(buf_rows * Wp)] : nullptr;
#pragma omp for schedule(static)
    for (int64_t task = 0; task < planes * chunks; ++task) {
      const int64_t nk = task / chunks, k = nk % p.K, n = nk / p.K;
      const int64_t oh0 = (task % chunks) * rows_per, oh1 = dmin(oh0 + rows_per, p.Ho);
      const T* xc = x + (n * p.C + k / m) * p.in_plane();
      const T* wk = w + k * taps;
      const T bias = b ? b[k] : T(0);
      // the input as read by output row oh: rows from src + (oh - oh0) * sh * ld, ld apart
      const T* src = xc + (oh0 * p.sh) * p.W;
      int64_t ld = p.W;
      if (pad) {
        const int64_t r0 = oh0 * p.sh - p.ph, nr = (oh1 - 1 - oh0) * p.sh + span;
        for (int64_t r = 0; r < nr; ++r) {
          T* dst = buf + r * Wp;
          const int64_t ih = r0 + r;
          if (ih < 0 || ih >= p.H) {
            std::memset(dst, 0, sizeof(T) * size_t(Wp));
            continue;
          }
          std::memset(dst, 0, sizeof(T) * size_t(p.pw));
          std::memcpy(dst + p.pw, xc + ih * p.W, sizeof(T) * size_t(p.W));
          std::memset(dst + p.pw + p.W, 0, sizeof(T) * size_t(p.pw));
        }
        src = buf;
        ld = Wp;
      }
      Conv2dParams q = p;  // the padded geometry the blocks read
      q.W = ld;
      q.pw = 0;
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        T* yr = y + (nk * p.Ho + oh) * p.Wo;
        const T* xr = src + (oh - oh0) * p.sh * ld;
        if (nb > 0 && pairs && oh + 1 < oh1) {
          fwd_row_pair_blocks<T, V>(xr, wk, q, ob, nb, bias, yr, yr + p.Wo);
          ++oh;
        } else if (nb == 0)
          fwd_row_scalar(p, xr, ld, wk, bias, yr);
        else if (p.sw == 1)
          fwd_row_blocks<T, 1, V>(xr, wk, q, 0, 0, p.kh, ob, nb, bias, yr);
        else if (p.sw == 2)
          fwd_row_blocks<T, 2, V>(xr, wk, q, 0, 0, p.kh, ob, nb, bias, yr);
        else
          fwd_row_blocks<T, 0, V>(xr, wk, q, 0, 0, p.kh, ob, nb, bias, yr);
      }
    }
    delete[] buf;
  }
  delete[] ob;
}

template <typename T, int S>
inline void scatter_row(const T* g, T wv, int64_t lo, int64_t hi, int64_t s_rt, T* dst) {
  const int64_t s = S > 0 ? S : s_rt;
  for (int64_t ow = lo; ow < hi; ++ow) dst[ow * s] += wv * g[ow];
}

// sum of a[o] * b[o*s] over o in [lo, hi), in 8 independent lanes (vectorisable).
template <typename T, int S>
inline T dot_row(const T* a, const T* b, int64_t lo, int64_t hi, int64_t s_rt) {
  const int64_t s = S > 0 ? S : s_rt;
  T acc[8] = {};
  int64_t o = lo;
  for (; o + 8 <= hi; o += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[o + l] * b[(o + l) * s];
  for (; o < hi; ++o) acc[0] += a[o] * b[o * s];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// For stride 1 and one output per channel, dx is itself a depthwise convolution: of dy, padded
// by (dilated extent - 1 - padding), with each channel's weights flipped in (i, j); it runs on the
// register-blocked forward instead of a scatter per tap (which loads and stores dx for every FMA).
inline bool dx_as_forward(const Conv2dParams& p) {
  return p.K == p.C && p.sh == 1 && p.sw == 1 && p.ph <= p.dh * (p.kh - 1) && p.pw <= p.dw * (p.kw - 1);
}

// dx for column stride 2, one output per channel, finite w: gathered, not scattered. Input column
// iw = 2t + a (phase a) gets tap j of kernel row i exactly when a = (j*dw + pw) mod 2, from dy column
// t + (a + pw - j*dw) / 2: per phase a shifted contiguous read of the dy row. So each vector of V
// columns of a phase sums its live taps in registers and the two phases are interleaved into dx once:
// no read-modify-write of a buffer per tap. dy is copied per plane into zero-padded rows (the shifts
// reach past both ends; padding zeros times finite weights add nothing). Taps in (i, j) order.
constexpr int64_t kMaxGatherTaps = 64;  // kh * kw at most: the per-row tap tables live on the stack
inline bool dx_gathers(const Conv2dParams& p) { return p.K == p.C && p.sw == 2 && p.kh * p.kw <= kMaxGatherTaps; }

template <typename T>
void dx_gather_s2(const Conv2dParams& p, const T* w, const T* dy, T* dx) {
  constexpr int V = kDwVecBytes / sizeof(T);
  typedef T TV __attribute__((vector_size(V * sizeof(T))));
  const int64_t half = cdiv(p.W, 2), nblk = cdiv(half, V), taps = p.kh * p.kw;
  int64_t smin = 0, smax = 0;
  for (int64_t j = 0; j < p.kw; ++j) {
    const int64_t a = (j * p.dw + p.pw) & 1, sh = (a + p.pw - j * p.dw) / 2;
    smin = dmin(smin, sh);
    smax = dmax(smax, sh);
  }
  const int64_t lpad = -smin, wrow = lpad + dmax(p.Wo, nblk * V + smax) + 1;
#pragma omp parallel num_threads(team(dw_parallel(p) ? num_threads() : 1))
  {
    T* buf = new T[size_t(p.Ho * wrow)];  // new[], not std::vector: no std:: template in an ISA copy
    std::memset(buf, 0, sizeof(T) * size_t(p.Ho * wrow));
    const T* rows[kMaxGatherTaps];
    int64_t ri[kMaxGatherTaps];
    const T* s0[kMaxGatherTaps];  // per phase: each live tap's dy row (shifted) and weight
    const T* s1[kMaxGatherTaps];
    T w0[kMaxGatherTaps], w1[kMaxGatherTaps];
#pragma omp for schedule(static)
    for (int64_t pl = 0; pl < p.N * p.C; ++pl) {
      const T* wk = w + (pl % p.C) * taps;
      for (int64_t oh = 0; oh < p.Ho; ++oh)
        std::memcpy(buf + oh * wrow + lpad, dy + pl * p.out_plane() + oh * p.Wo, sizeof(T) * size_t(p.Wo));
      for (int64_t ih = 0; ih < p.H; ++ih) {
        int64_t nr = 0;  // the kernel rows that reach this input row, and their dy rows
        for (int64_t i = 0; i < p.kh; ++i) {
          const int64_t q = ih + p.ph - i * p.dh;
          if (q < 0 || q % p.sh != 0 || q / p.sh >= p.Ho) continue;
          rows[nr] = buf + q / p.sh * wrow + lpad;
          ri[nr++] = i;
        }
        // the live taps of each phase in (i, j) order: weight and dy row (shift included)
        int64_t n0 = 0, n1 = 0;
        for (int64_t r = 0; r < nr; ++r)
          for (int64_t j = 0; j < p.kw; ++j) {
            const int64_t a = (j * p.dw + p.pw) & 1;
            const T* src = rows[r] + (a + p.pw - j * p.dw) / 2;
            if (a == 0) {
              w0[n0] = wk[ri[r] * p.kw + j];
              s0[n0++] = src;
            } else {
              w1[n1] = wk[ri[r] * p.kw + j];
              s1[n1++] = src;
            }
          }
        T* out = dx + pl * p.in_plane() + ih * p.W;
        for (int64_t b = 0; b < nblk; ++b) {
          // the last block overlaps the one before (same values again) rather than going element-wise
          const int64_t t0 = dmax(0, dmin(b * V, half - V));
          TV e = TV{}, o = TV{}, d;
          for (int64_t k = 0; k < n0; ++k) {
            std::memcpy(&d, s0[k] + t0, sizeof d);
            e += w0[k] * d;
          }
          for (int64_t k = 0; k < n1; ++k) {
            std::memcpy(&d, s1[k] + t0, sizeof d);
            o += w1[k] * d;
          }
          store_zipped<T, V>(out + 2 * t0, e, o, p.W - 2 * t0, p.W - 2 * t0);
        }
      }
    }
    delete[] buf;
  }
}

// The weight gradient of output channel k over the columns [b0, b1) (at least V, windows inside
// the row): each dy vector is loaded once and multiplied into the kw taps of kernel row i,
// whose sums stay in vector accumulators (flushed to double once per sample by the caller).
// The last block ends at b1 and overlaps the one before: its lanes already counted are zeroed.
// keep: all-ones in the lanes of the last block that are new, zero in those already counted, ANDed
// onto the products (zeroing dy there instead would make 0 * Inf = NaN from an Inf in x).
template <typename T, int S, int V, typename TV, typename UV>
inline void dw_blocks(const T* g, const T* xr, const Conv2dParams& p, int64_t b0, int64_t b1, UV keep, TV* acc) {
  const int64_t s = S > 0 ? S : p.sw;
  for (int64_t o = b0; o < b1; o += V) {
    const int64_t at = o + V <= b1 ? o : b1 - V;
    TV gv;
    std::memcpy(&gv, g + at, sizeof gv);
    const T* src = xr + at * s - p.pw;
    if (at == o) {
      for (int64_t j = 0; j < p.kw; ++j) acc[j] += gv * load_strided<TV, T, S, V>(src + j * p.dw, s);
      continue;
    }
    for (int64_t j = 0; j < p.kw; ++j) {
      const TV prod = gv * load_strided<TV, T, S, V>(src + j * p.dw, s);
      UV bits;
      std::memcpy(&bits, &prod, sizeof bits);
      bits &= keep;
      TV kept;
      std::memcpy(&kept, &bits, sizeof kept);
      acc[j] += kept;
    }
  }
}

constexpr int64_t kMaxBlockedTaps = 64;  // vector accumulators on the stack (4 KiB at 64 bytes each)

// Over 80 lines: dx (a forward on dy, or the scatter) and then dw, both over the per-tap live-column
// table built once at the top; each part is its own commented region below.
// Returns whether db was written (only the fused stride-1 3x3 kernel sums it; db may be null).
template <typename T>
bool dw_backward(const Conv2dParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
  if (s1_fused_applies(p)) return s1_backward<T>(p, x, w, dy, dx, dw, db);
  if (p.K == p.C && s2_phase_applies(p)) {
    s2_backward<T>(p, x, w, dy, dx, dw);
    return false;
  }
  const int64_t m = p.K / p.C, taps = p.kh * p.kw;
  // Each tap column j's live output columns [jr[2j], jr[2j+1]): the same for every row, and two
  // integer divisions each (computed per row and tap they cost more than the multiply-adds).
  int64_t* jr = new int64_t[size_t(2 * p.kw)];
  for (int64_t j = 0; j < p.kw; ++j) live_ow(j * p.dw - p.pw, p.sw, p.W, p.Wo, jr[2 * j], jr[2 * j + 1]);
  // (The forward on dy multiplies w by dy's padding zeros, products the true dx does not have:
  // with a non-finite w they would be NaN, so that case takes the scatter.)
  if (dx && dx_as_forward(p) && finite_taps(w, p.K * taps)) {
    T* wf = new T[size_t(p.K * taps)];  // new[], not std::vector: no std:: template in an ISA copy
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t t = 0; t < taps; ++t) wf[k * taps + t] = w[k * taps + (taps - 1 - t)];
    Conv2dParams q = p;
    q.H = p.Ho;
    q.W = p.Wo;
    q.Ho = p.H;
    q.Wo = p.W;
    q.ph = p.dh * (p.kh - 1) - p.ph;
    q.pw = p.dw * (p.kw - 1) - p.pw;
    dw_forward<T>(q, dy, wf, static_cast<const T*>(nullptr), dx);
    delete[] wf;
    dx = nullptr;  // done
  }
  if (dx && dx_gathers(p) && finite_taps(w, p.K * taps)) {
    dx_gather_s2<T>(p, w, dy, dx);
    dx = nullptr;  // done
  }
  if (dx) {
    // For sw > 1 each plane's sums go to a phase-major buffer first (row ih, phase iw % sw, index
    // iw / sw): a tap's outputs then land on consecutive elements (a vector FMA, not one strided
    // store each), and one pass per row interleaves the phases into dx. Same sums, same order.
    const int64_t sw = p.sw, Wq = cdiv(p.W, sw) + 1;
    int64_t* jb = new int64_t[size_t(p.kw)];  // tap j's first element in a buffer row
    for (int64_t j = 0; j < p.kw; ++j) {
      const int64_t off = j * p.dw - p.pw;
      jb[j] = (off - fdiv(off, sw) * sw) * Wq + fdiv(off, sw);
    }
#pragma omp parallel num_threads(team(dw_parallel(p) ? num_threads() : 1))
    {
      T* pb = sw > 1 ? new T[size_t(p.H * sw * Wq)] : nullptr;
#pragma omp for schedule(static)
      for (int64_t pl = 0; pl < p.N * p.C; ++pl) {
        const int64_t n = pl / p.C, c = pl % p.C;
        T* dxp = dx + pl * p.in_plane();
        T* acc = sw > 1 ? pb : dxp;
        const int64_t ld = sw > 1 ? sw * Wq : p.W;
        std::memset(acc, 0, sizeof(T) * size_t(p.H * ld));
        for (int64_t q = 0; q < m; ++q) {
          const int64_t k = c * m + q;
          const T* wk = w + k * taps;
          const T* dyk = dy + (n * p.K + k) * p.out_plane();
          for (int64_t oh = 0; oh < p.Ho; ++oh) {
            const int64_t h0 = oh * p.sh - p.ph;
            int64_t i_lo, i_hi;
            tap_range(h0, p.kh, p.dh, p.H, i_lo, i_hi);
            const T* g = dyk + oh * p.Wo;
            for (int64_t i = i_lo; i < i_hi; ++i) {
              T* dr = acc + (h0 + i * p.dh) * ld;
              for (int64_t j = 0; j < p.kw; ++j) {
                const int64_t lo = jr[2 * j], hi = jr[2 * j + 1];
                if (lo >= hi) continue;
                const T wv = wk[i * p.kw + j];
                if (sw == 1)
                  scatter_row<T, 1>(g, wv, lo, hi, 1, dr + j * p.dw - p.pw);
                else
                  scatter_row<T, 1>(g, wv, lo, hi, 1, dr + jb[j]);
              }
            }
          }
        }
        if (sw == 2)  // a two-stream interleave the compiler vectorises
          for (int64_t ih = 0; ih < p.H; ++ih) {
            const T* ev = pb + ih * ld;
            const T* od = ev + Wq;
            T* dst = dxp + ih * p.W;
            const int64_t half = p.W / 2;
            for (int64_t t = 0; t < half; ++t) {
              dst[2 * t] = ev[t];
              dst[2 * t + 1] = od[t];
            }
            if (p.W % 2) dst[p.W - 1] = ev[half];
          }
        else if (sw > 2)
          for (int64_t ih = 0; ih < p.H; ++ih)
            for (int64_t ph = 0; ph < sw; ++ph) {
              const T* src = pb + ih * ld + ph * Wq;
              T* dst = dxp + ih * p.W;
              for (int64_t t = 0; t * sw + ph < p.W; ++t) dst[t * sw + ph] = src[t];
            }
      }
      delete[] pb;
    }
    delete[] jb;
  }
  if (dw) {
    constexpr int V = kDwVecBytes / sizeof(T);
    typedef T TV __attribute__((vector_size(V * sizeof(T))));
    // the columns whose windows lie inside the row, in blocks of V (when there are V of them): [b0, b1)
    const int64_t last = p.W - 1 - (p.kw - 1) * p.dw + p.pw;
    const int64_t in_lo = dmin(cdiv(p.pw, p.sw), p.Wo), in_hi = last < 0 ? 0 : dmin(last / p.sw + 1, p.Wo);
    const bool blocked = taps <= kMaxBlockedTaps && p.sw <= 2 && in_hi - in_lo >= V;
    const int64_t b0 = blocked ? in_lo : 0, b1 = blocked ? in_hi : 0;
    typedef typename UintOf<sizeof(T)>::type U;
    typedef U UV __attribute__((vector_size(V * sizeof(T))));
    UV keep;  // the last block's lanes past the full blocks (see dw_blocks)
    const int64_t shift = blocked ? (V - (b1 - b0) % V) % V : 0;
    for (int v = 0; v < V; ++v) keep[v] = v < shift ? U(0) : ~U(0);
#pragma omp parallel for schedule(static) num_threads(team(dw_parallel(p) ? num_threads() : 1))
    for (int64_t k = 0; k < p.K; ++k) {
      // rows summed in T lanes, samples added in double (new[], not std::vector: no std:: template may be
      // instantiated in an ISA copy)
      double* acc = new double[size_t(taps)]();
      TV vacc[kMaxBlockedTaps];
      for (int64_t n = 0; n < p.N; ++n) {
        const T* xc = x + (n * p.C + k / m) * p.in_plane();
        const T* dyk = dy + (n * p.K + k) * p.out_plane();
        if (blocked)
          for (int64_t t = 0; t < taps; ++t) vacc[t] = TV{};
        for (int64_t oh = 0; oh < p.Ho; ++oh) {
          const int64_t h0 = oh * p.sh - p.ph;
          int64_t i_lo, i_hi;
          tap_range(h0, p.kh, p.dh, p.H, i_lo, i_hi);
          const T* g = dyk + oh * p.Wo;
          for (int64_t i = i_lo; i < i_hi; ++i) {
            const T* xr = xc + (h0 + i * p.dh) * p.W;
            if (blocked) {
              if (p.sw == 1)
                dw_blocks<T, 1, V>(g, xr, p, b0, b1, keep, vacc + i * p.kw);
              else
                dw_blocks<T, 2, V>(g, xr, p, b0, b1, keep, vacc + i * p.kw);
            }
            for (int64_t j = 0; j < p.kw; ++j) {
              const int64_t off = j * p.dw - p.pw;
              const int64_t lo = jr[2 * j], hi = jr[2 * j + 1];
              // the columns the blocks did not cover: [lo, b0) and [max(lo, b1), hi) (lo <= b0: the
              // block columns are live for every tap; without blocks b0 = b1 = 0)
              for (int part = 0; part < 2; ++part) {
                const int64_t r0 = part == 0 ? lo : dmax(lo, b1), r1 = part == 0 ? dmin(hi, b0) : hi;
                if (r0 >= r1) continue;
                T s = T(0);
                if (r1 - r0 < 16)  // the few edge columns next to the blocks: no lanes to set up
                  for (int64_t o = r0; o < r1; ++o) s += g[o] * xr[off + o * p.sw];
                else if (p.sw == 1)
                  s = dot_row<T, 1>(g, xr + off, r0, r1, 1);
                else if (p.sw == 2)
                  s = dot_row<T, 2>(g, xr + off, r0, r1, 2);
                else
                  s = dot_row<T, 0>(g, xr + off, r0, r1, p.sw);
                acc[size_t(i * p.kw + j)] += double(s);
              }
            }
          }
        }
        if (blocked)
          for (int64_t t = 0; t < taps; ++t) {
            double sum = 0.0;
            for (int v = 0; v < V; ++v) sum += double(vacc[t][v]);
            acc[size_t(t)] += sum;
          }
      }
      for (int64_t t = 0; t < taps; ++t) dw[k * taps + t] = T(acc[size_t(t)]);
      delete[] acc;
    }
  }
  delete[] jr;
  return false;
}

}  // namespace dk::cpu::DK_DW_NS
