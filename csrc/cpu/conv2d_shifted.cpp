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

template <typename T>
struct Shifted {
  const Conv2dParams& p;
  const GemmKernel<T>& kr;
  int64_t Hp, Wp, plane;  // padded input plane
  int64_t Q, Qp;          // output positions in padded-width numbering, rounded up to NR
  int64_t Kp;             // output channels rounded up to MR
  int64_t xlen;           // padded input length incl. the slack the last panel reads
  std::vector<int64_t> offs;
  std::vector<T> Ap;  // weights packed per kc block: block at pc*Kp, panel ir at + ir*kc

  Shifted(const Conv2dParams& p_, const T* w) : p(p_), kr(gemm_kernel<T>()) {
    Hp = p.H + 2 * p.ph;
    Wp = p.W + 2 * p.pw;
    plane = Hp * Wp;
    Q = (p.Ho - 1) * Wp + p.Wo;
    Qp = (Q + kr.nr - 1) / kr.nr * kr.nr;
    Kp = (p.K + kr.mr - 1) / kr.mr * kr.mr;
    const int64_t crs = p.crs();
    offs.resize(crs);
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t i = 0; i < p.kh; ++i)
        for (int64_t j = 0; j < p.kw; ++j) offs[(c * p.kh + i) * p.kw + j] = c * plane + i * p.dh * Wp + j * p.dw;
    xlen = std::max(p.C * plane, offs[crs - 1] + Qp);
    Ap.resize(size_t(Kp * crs));
    for (int64_t pc = 0; pc < crs; pc += kShiftKc) {
      const int64_t kc = std::min(kShiftKc, crs - pc);
      pack_a(false, p.K, kc, w + pc, crs, kr.mr, Ap.data() + pc * Kp, kr.pack_t);
    }
  }

  // Channels [c0, c1) of x_n into the zero-padded buffer (and the slack, by whoever has c1 == C).
  void pad(const T* x_n, T* xp, int64_t c0, int64_t c1) const {
    for (int64_t c = c0; c < c1; ++c) {
      T* dst = xp + c * plane;
      const T* src = x_n + c * p.in_plane();
      std::fill(dst, dst + p.ph * Wp, T(0));
      for (int64_t h = 0; h < p.H; ++h) {
        T* row = dst + (p.ph + h) * Wp;
        std::fill(row, row + p.pw, T(0));
        std::memcpy(row + p.pw, src + h * p.W, sizeof(T) * p.W);
        std::fill(row + p.pw + p.W, row + Wp, T(0));
      }
      std::fill(dst + (p.ph + p.H) * Wp, dst + plane, T(0));
    }
    if (c1 == p.C) std::fill(xp + p.C * plane, xp + xlen, T(0));
  }

  // ytmp[:, q] for NR-panels [j0, j1) of q.
  void gemm_panels(const T* xp, T* ytmp, int64_t j0, int64_t j1) const {
    const int64_t crs = p.crs();
    for (int64_t pc = 0; pc < crs; pc += kShiftKc) {
      const int64_t kc = std::min(kShiftKc, crs - pc);
      const T beta = pc == 0 ? T(0) : T(1);
      const T* ablock = Ap.data() + pc * Kp;
      for (int64_t jr = j0 * kr.nr; jr < j1 * kr.nr; jr += kr.nr)
        for (int64_t ir = 0; ir < Kp; ir += kr.mr)
          kr.fn_shifted(kc, ablock + ir * kc, xp + jr, offs.data() + pc, ytmp + ir * Qp + jr, Qp, T(1), beta);
    }
  }

  // y_n[k] = the valid columns of ytmp[k] (+ b[k]) for k in [k0, k1).
  void compact(const T* ytmp, const T* b, T* y_n, int64_t k0, int64_t k1) const {
    for (int64_t k = k0; k < k1; ++k) {
      const T bk = b ? b[k] : T(0);
      for (int64_t oh = 0; oh < p.Ho; ++oh) {
        const T* src = ytmp + k * Qp + oh * Wp;
        T* dst = y_n + (k * p.Ho + oh) * p.Wo;
        for (int64_t ow = 0; ow < p.Wo; ++ow) dst[ow] = src[ow] + bk;
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
      T* ytmp = conv_thread_buffer<T>(kOutSlot, size_t(s.Kp * s.Qp));
      s.pad(x + n * p.C * p.in_plane(), xp, 0, p.C);
      s.gemm_panels(xp, ytmp, 0, panels);
      s.compact(ytmp, b, y + n * p.K * p.out_plane(), 0, p.K);
    }
    return;
  }
  // Few samples: one at a time, threads split the channels, then the column panels.
  T* xp = conv_thread_buffer<T>(kPadSlot, size_t(s.xlen));
  T* ytmp = conv_thread_buffer<T>(kOutSlot, size_t(s.Kp * s.Qp));
  for (int64_t n = 0; n < p.N; ++n) {
    const T* x_n = x + n * p.C * p.in_plane();
    T* y_n = y + n * p.K * p.out_plane();
#pragma omp parallel num_threads(threads ? nt : 1)
    {
      const int t = omp_get_thread_num(), T_ = omp_get_num_threads();
      s.pad(x_n, xp, p.C * t / T_, p.C * (t + 1) / T_);
#pragma omp barrier
      s.gemm_panels(xp, ytmp, panels * t / T_, panels * (t + 1) / T_);
#pragma omp barrier
      s.compact(ytmp, b, y_n, p.K * t / T_, p.K * (t + 1) / T_);
    }
  }
}

template void conv2d_forward_shifted<float>(const Conv2dParams&, const float*, const float*, const float*, float*);
template void conv2d_forward_shifted<double>(const Conv2dParams&, const double*, const double*, const double*,
                                             double*);

}  // namespace dk::cpu
