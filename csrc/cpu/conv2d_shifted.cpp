#include "cpu/conv2d_shifted.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/conv2d_scratch.h"
#include "cpu/gemm.h"
#include "cpu/gemm_kernels.h"
#include "cpu/gemm_pack.h"
#include "cpu/parallel.h"

namespace dk::cpu {

namespace {

// Inner-dimension block: kc rows of B (each NR values) stay in L1 while all MR-row panels of
// the weights pass over them.
constexpr int64_t kShiftKc = 256;
// Output panels per chunk: the chunk's GEMM result (Kp x 32 panels x NR) is compacted while in L2.
constexpr int64_t kChunkPanels = 32;

template <typename T>
struct Shifted {
  const Conv2dParams& p;
  const GemmKernel<T>& kr;
  int64_t Hq, Wq, plane;  // one phase plane of the padded input (sh x sw phases)
  int64_t Q, Qp;          // output positions in phase-width numbering, rounded up to NR
  int64_t Kp;             // output channels rounded up to MR
  int64_t xlen;           // phase buffer length incl. the slack the last panel reads
  std::vector<int64_t> offs;
  std::vector<char> phase_used;  // e.g. a 1x1 stride-2 kernel reads only phase (0, 0)
  std::vector<T> Ap;  // weights packed per kc block: block at pc*Kp, panel ir at + ir*kc

  // w == nullptr: geometry only (the weight gradient needs no packed weights).
  Shifted(const Conv2dParams& p_, const T* w) : p(p_), kr(gemm_kernel<T>()) {
    Hq = shifted_phase_size(p.H + 2 * p.ph, p.sh);
    Wq = shifted_phase_size(p.W + 2 * p.pw, p.sw);
    plane = Hq * Wq;
    Q = (p.Ho - 1) * Wq + p.Wo;
    Qp = (Q + kr.nr - 1) / kr.nr * kr.nr;
    Kp = (p.K + kr.mr - 1) / kr.mr * kr.mr;
    const int64_t crs = p.crs();
    offs.resize(crs);
    phase_used.assign(size_t(p.sh * p.sw), 0);
    int64_t max_off = 0;
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j) {
          // tap (i, j) reads padded row oh*sh + i*dh = (oh + i*dh/sh)*sh + (i*dh % sh): phase row
          // oh + i*dh/sh of phase i*dh % sh (likewise for columns)
          const int64_t phase = (i * p.dh % p.sh) * p.sw + (j * p.dw % p.sw);
          const int64_t o = (phase * p.C + c) * plane + (i * p.dh / p.sh) * Wq + (j * p.dw / p.sw);
          offs[(c * p.kh + i) * p.kw + j] = o;
          phase_used[size_t(phase)] = 1;
          max_off = std::max(max_off, o);
        }
    xlen = std::max(p.sh * p.sw * p.C * plane, max_off + Qp);
    if (!w) return;
    Ap.resize(size_t(Kp * crs));
    for (int64_t pc = 0; pc < crs; pc += kShiftKc) {
      const int64_t kc = std::min(kShiftKc, crs - pc);
      pack_a(false, p.K, kc, w + pc, crs, kr.mr, Ap.data() + pc * Kp, kr.pack_t);
    }
  }

  // Channels [c0, c1) of x_n into the zero-padded phase planes: phase (a, b) holds
  // xpad[r*sh + a][t*sw + b] at (r, t). The slack is cleared by whoever has c1 == C.
  void pad(const T* x_n, T* xp, int64_t c0, int64_t c1) const {
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
          for (int64_t r = 0; r < Hq; ++r) {
            T* row = dst + r * Wq;
            const int64_t h = r * p.sh + a - p.ph;
            if (h < 0 || h >= p.H) {
              std::fill(row, row + Wq, T(0));
              continue;
            }
            const T* s = src + h * p.W + off;
            std::fill(row, row + t_lo, T(0));
            if (p.sw == 1) std::memcpy(row + t_lo, s + t_lo, sizeof(T) * (t_hi - t_lo));
            else
              for (int64_t t = t_lo; t < t_hi; ++t) row[t] = s[t * p.sw];
            std::fill(row + t_hi, row + Wq, T(0));
          }
        }
      }
    if (c1 == p.C) std::fill(xp + p.sh * p.sw * p.C * plane, xp + xlen, T(0));
  }

  // yt[:, q - j0*NR] for NR-panels [j0, j1) of q; yt has leading dimension ld.
  void gemm_panels(const T* xp, T* yt, int64_t ld, int64_t j0, int64_t j1) const {
    const int64_t crs = p.crs();
    for (int64_t pc = 0; pc < crs; pc += kShiftKc) {
      const int64_t kc = std::min(kShiftKc, crs - pc);
      const T beta = pc == 0 ? T(0) : T(1);
      const T* ablock = Ap.data() + pc * Kp;
      for (int64_t jr = j0 * kr.nr; jr < j1 * kr.nr; jr += kr.nr)
        for (int64_t ir = 0; ir < Kp; ir += kr.mr)
          kr.fn_shifted(kc, ablock + ir * kc, xp + jr, offs.data() + pc, yt + ir * ld + (jr - j0 * kr.nr), ld,
                        T(1), beta);
    }
  }

  // Panels [j0, j1) of sample y_n, a chunk of kChunkPanels at a time through a per-thread
  // buffer that stays in L2: GEMM, then the kept columns (+ bias) to y_n.
  void run_panels(const T* xp, const T* b, T* y_n, int64_t j0, int64_t j1) const {
    const int64_t ld = kChunkPanels * kr.nr;
    T* yt = conv_thread_buffer<T>(kOutSlot, size_t(Kp * ld));
    for (int64_t c0 = j0; c0 < j1; c0 += kChunkPanels) {
      const int64_t c1 = std::min(j1, c0 + kChunkPanels);
      gemm_panels(xp, yt, ld, c0, c1);
      compact(yt, ld, c0 * kr.nr, std::min(Q, c1 * kr.nr), b, y_n);
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
        for (int64_t b = 0; b < p.sw; ++b) {  // columns w = t*sw + b - pw of phase b
          const T* src = gp + ((a * p.sw + b) * p.C + c) * plane + r * Wq;
          const int64_t off = b - p.pw;
          const int64_t t_lo = off >= 0 ? 0 : (-off + p.sw - 1) / p.sw;
          for (int64_t t = t_lo, w = t_lo * p.sw + off; w < p.W; ++t, w += p.sw) dst[w] = src[t];
        }
      }
  }

  // y_n[k][oh][ow] = yt[k][q - q0] (+ b[k]) for the kept q = oh*Wq + ow (ow < Wo) in [q0, q1).
  void compact(const T* yt, int64_t ld, int64_t q0, int64_t q1, const T* b, T* y_n) const {
    for (int64_t k = 0; k < p.K; ++k) {
      const T bk = b ? b[k] : T(0);
      for (int64_t oh = q0 / Wq; oh <= (q1 - 1) / Wq && oh < p.Ho; ++oh) {
        const int64_t lo = std::max<int64_t>(0, q0 - oh * Wq), hi = std::min(p.Wo, q1 - oh * Wq);
        const T* src = yt + k * ld + oh * Wq - q0;
        T* dst = y_n + (k * p.Ho + oh) * p.Wo;
        for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow] + bk;
      }
    }
  }
};

}  // namespace

template <typename T>
void conv2d_forward_shifted(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y) {
  const Shifted<T> s(p, w);
  const int nt = num_threads();
  const bool threads = nt > 1 && 2.0 * double(p.N * p.K) * double(p.out_plane() * p.crs()) > 2e6;
  const int64_t panels = s.Qp / s.kr.nr;
  if (threads && p.N >= nt) {
    // Whole samples per thread, each with its own padded input and output buffers.
#pragma omp parallel for schedule(dynamic) num_threads(nt)
    for (int64_t n = 0; n < p.N; ++n) {
      T* xp = conv_thread_buffer<T>(kPadSlot, size_t(s.xlen));
      s.pad(x + n * p.C * p.in_plane(), xp, 0, p.C);
      s.run_panels(xp, b, y + n * p.K * p.out_plane(), 0, panels);
    }
    return;
  }
  // Few samples: one at a time, threads split the channels, then the column panels.
  T* xp = conv_thread_buffer<T>(kPadSlot, size_t(s.xlen));
  for (int64_t n = 0; n < p.N; ++n) {
    const T* x_n = x + n * p.C * p.in_plane();
    T* y_n = y + n * p.K * p.out_plane();
#pragma omp parallel num_threads(threads ? nt : 1)
    {
      const int t = omp_get_thread_num(), T_ = omp_get_num_threads();
      s.pad(x_n, xp, p.C * t / T_, p.C * (t + 1) / T_);
#pragma omp barrier
      s.run_panels(xp, b, y_n, panels * t / T_, panels * (t + 1) / T_);
    }
  }
}

// dw[k, crs] = sum over n, q of dy_n[k, q] * col_n[crs, q], computed transposed as
// dwT[crs, k] = col_n * dy_n^T, with col_n's rows read in place from the phase-split input.
// Dropped columns have dy = 0, so their inputs must be finite (0 * Inf = NaN): the caller
// checks x first.
template <typename T>
void conv2d_weight_grad_shifted(const Conv2dParams& p, const T* x, const T* dy, T* dw) {
  const Shifted<T> s(p, static_cast<const T*>(nullptr));
  const int nt = num_threads();
  const bool threads = nt > 1 && 2.0 * double(p.N * p.K) * double(p.out_plane() * p.crs()) > 2e6;
  const int64_t crs = p.crs(), wsize = crs * p.K;
  const int used = threads ? nt : 1;
  std::vector<T> acc(size_t(used) * size_t(wsize), T(0));  // dwT per thread
  if (threads && p.N >= nt) {
#pragma omp parallel num_threads(nt)
    {
      T* mine = acc.data() + size_t(omp_get_thread_num()) * size_t(wsize);
      T* xp = conv_thread_buffer<T>(kPadSlot, size_t(s.xlen));
      T* dyq = conv_thread_buffer<T>(kOutSlot, size_t(p.K * s.Q));
#pragma omp for schedule(dynamic)
      for (int64_t n = 0; n < p.N; ++n) {
        s.pad(x + n * p.C * p.in_plane(), xp, 0, p.C);
        s.spread(dy + n * p.K * p.out_plane(), dyq, 0, p.K);
        gemm_offset_rows_a<T>(true, crs, p.K, s.Q, T(1), xp, s.offs.data(), dyq, s.Q, T(1), mine, p.K, false);
      }
    }
  } else {
    T* xp = conv_thread_buffer<T>(kPadSlot, size_t(s.xlen));
    T* dyq = conv_thread_buffer<T>(kOutSlot, size_t(p.K * s.Q));
    for (int64_t n = 0; n < p.N; ++n) {
#pragma omp parallel num_threads(used)
      {
        const int t = omp_get_thread_num(), T_ = omp_get_num_threads();
        s.pad(x + n * p.C * p.in_plane(), xp, p.C * t / T_, p.C * (t + 1) / T_);
        s.spread(dy + n * p.K * p.out_plane(), dyq, p.K * t / T_, p.K * (t + 1) / T_);
      }
      gemm_offset_rows_a<T>(true, crs, p.K, s.Q, T(1), xp, s.offs.data(), dyq, s.Q, T(1), acc.data(), p.K,
                            threads);
    }
  }
  // dw[k][crs] = sum over threads of dwT[crs][k]
#pragma omp parallel for schedule(static) num_threads(used)
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t r = 0; r < crs; ++r) {
      T v = T(0);
      for (int t = 0; t < used; ++t) v += acc[size_t(t) * size_t(wsize) + size_t(r * p.K + k)];
      dw[k * crs + r] = v;
    }
}

// dx of one sample: dcol = w^T * dy_n (dy in phase-width numbering, zero in dropped columns) in
// column chunks; each dcol row is added, contiguously, into the phase-split gradient buffer at
// that row's offset (col2im in phase space: no strided scatter), which is finally un-split into dx_n.
// `par`: threads split the GEMM and the channels.
template <typename T>
void input_grad_sample(const Shifted<T>& s, const T* w, const T* dy_n, T* dx_n, bool par) {
  const Conv2dParams& p = s.p;
  const int64_t crs = p.crs(), rows_per_c = p.kh * p.kw;
  const int64_t qc_max = std::max<int64_t>(256, (int64_t(1) << 18) / crs);
  T* gp = conv_thread_buffer<T>(kPadSlot, size_t(s.xlen));
  T* dyq = conv_thread_buffer<T>(kOutSlot, size_t(p.K * s.Q));
  T* dcol = conv_thread_buffer<T>(kColSlot, size_t(crs * std::min(qc_max, s.Q)));
  const int nt = par ? num_threads() : 1;
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), T_ = omp_get_num_threads();
    std::fill(gp + s.xlen * t / T_, gp + s.xlen * (t + 1) / T_, T(0));
    s.spread(dy_n, dyq, p.K * t / T_, p.K * (t + 1) / T_);
  }
  for (int64_t q0 = 0; q0 < s.Q; q0 += qc_max) {
    const int64_t qc = std::min(qc_max, s.Q - q0);
    gemm<T>(true, false, crs, qc, p.K, T(1), w, crs, dyq + q0, s.Q, T(0), dcol, qc, par);
    // rows of one channel stay inside that channel's planes, so channels never collide
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t r = c * rows_per_c; r < (c + 1) * rows_per_c; ++r) {
        T* dst = gp + s.offs[r] + q0;
        const T* src = dcol + r * qc;
        for (int64_t q = 0; q < qc; ++q) dst[q] += src[q];
      }
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), T_ = omp_get_num_threads();
    s.unpad(gp, dx_n, p.C * t / T_, p.C * (t + 1) / T_);
  }
}

template <typename T>
void conv2d_input_grad_shifted(const Conv2dParams& p, const T* w, const T* dy, T* dx) {
  const Shifted<T> s(p, static_cast<const T*>(nullptr));
  const int nt = num_threads();
  const bool threads = nt > 1 && 2.0 * double(p.N * p.K) * double(p.out_plane() * p.crs()) > 2e6;
  if (threads && p.N >= nt) {
#pragma omp parallel for schedule(dynamic) num_threads(nt)
    for (int64_t n = 0; n < p.N; ++n)
      input_grad_sample(s, w, dy + n * p.K * p.out_plane(), dx + n * p.C * p.in_plane(), false);
    return;
  }
  for (int64_t n = 0; n < p.N; ++n)
    input_grad_sample(s, w, dy + n * p.K * p.out_plane(), dx + n * p.C * p.in_plane(), threads);
}

template void conv2d_input_grad_shifted<float>(const Conv2dParams&, const float*, const float*, float*);
template void conv2d_input_grad_shifted<double>(const Conv2dParams&, const double*, const double*, double*);

template void conv2d_weight_grad_shifted<float>(const Conv2dParams&, const float*, const float*, float*);
template void conv2d_weight_grad_shifted<double>(const Conv2dParams&, const double*, const double*, double*);

template void conv2d_forward_shifted<float>(const Conv2dParams&, const float*, const float*, const float*, float*);
template void conv2d_forward_shifted<double>(const Conv2dParams&, const double*, const double*, const double*,
                                             double*);

}  // namespace dk::cpu
