// conv2d weight and input gradients by the shifted GEMM (conv2d_shifted.h; the plan:
// conv2d_shifted_plan.h).
#include "cpu/conv2d/conv2d_shifted_plan.h"

namespace dk::cpu {

using namespace shifted_detail;

// dwT[crs, K] += col_n * dyq^T for one sample, the transposed orientation, with col_n's rows
// read in place by the micro-kernel (GemmKernel::fn_rows): only dy (K x Q, the small operand)
// is packed, into panels of NR columns of K (the last NR/2 wide when that is enough). The inner
// dimension goes in blocks whose B panel stays in L1 while all row panels pass over it.
template <typename T>
void dw_rows_sample(const Shifted<T>& s, const T* xp, const T* dyq, T* dwT) {
  const Conv2dParams& p = s.p;
  const GemmKernel<T>& kr = s.kr;
  const int64_t crs = p.crs(), K = p.K, Q = s.Q, mr = kr.mr, nr = kr.nr;
  constexpr int64_t kBlockQ = 256;
  T* Bp = conv_thread_buffer<T>(kDcolSlot, size_t((K + nr - 1) / nr * nr * Q));
  const T* src[kMaxPanel];
  auto width = [&](int64_t k0) { return K - k0 <= nr / 2 ? nr / 2 : nr; };
  for (int64_t k0 = 0; k0 < K; k0 += nr) {
    const int64_t cols = std::min(nr, K - k0);
    for (int64_t j = 0; j < cols; ++j) src[j] = dyq + (k0 + j) * Q;
    kr.pack_t(cols, Q, src, int(width(k0)), Bp + k0 * Q);
  }
  const T* ar[kMaxPanel];
  alignas(64) T edge[kMaxPanel * kMaxPanel];
  for (int64_t q0 = 0; q0 < Q; q0 += kBlockQ) {
    const int64_t qc = std::min(kBlockQ, Q - q0);
    for (int64_t k0 = 0; k0 < K; k0 += nr) {
      const int64_t cols = std::min(nr, K - k0), wd = width(k0);
      const T* b = Bp + k0 * Q + q0 * wd;
      const GemmRowsKernel<T> fn = wd == nr ? kr.fn_rows : kr.fn_rows_half;
      for (int64_t r0 = 0; r0 < crs; r0 += mr) {
        const int64_t rows = std::min(mr, crs - r0);
        for (int64_t i = 0; i < mr; ++i) ar[i] = xp + s.offs[r0 + std::min(i, rows - 1)] + q0;
        T* c = dwT + r0 * K + k0;
        if (rows == mr && cols == wd) {
          fn(qc, ar, b, c, K, T(1), T(1));
          continue;
        }
        fn(qc, ar, b, edge, wd, T(1), T(0));
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = 0; j < cols; ++j) c[i * K + j] += edge[i * wd + j];
      }
    }
  }
}

// dw[k, crs] = sum over n, q of dy_n[k, q] * col_n[crs, q], as the GEMM dwT[crs, k] = col_n *
// dy_n^T with col_n's rows read in place from the input buffer: per sample and thread by
// dw_rows_sample, or, for fewer samples than threads, by the threaded GEMM (gemm_offset_rows_a).
// Dropped columns (phase layout) have dy = 0, so their inputs must be finite (0 * Inf = NaN):
// the caller checks x first.
template <typename T>
void conv2d_weight_grad_shifted(const Conv2dParams& p, const T* x, const T* dy, T* dw, int64_t x_ns, int64_t dy_ns) {
  if (x_ns == 0) x_ns = p.C * p.in_plane();
  if (dy_ns == 0) dy_ns = p.K * p.out_plane();
  const Shifted<T> s(p, static_cast<const T*>(nullptr));
  const int nt = num_threads();
  const bool threads = shifted_workers(p, nt) > 1;
  const int64_t crs = p.crs(), wsize = crs * p.K;
  const int used = threads ? nt : 1;
  std::vector<T> acc(size_t(used) * size_t(wsize), T(0));  // dwT per thread
  if (!shifted_dw_threaded_gemm(p, nt)) {
    // A slot, not a thread, owns a private dw and its run of samples, so the sums are the same
    // however many threads the team gets (it shrinks on a busy machine: team() in parallel.h).
#pragma omp parallel for schedule(dynamic) num_threads(team(used)) if (threads)
    for (int slot = 0; slot < used; ++slot) {
      T* mine = acc.data() + size_t(slot) * size_t(wsize);
      T* xp = s.input_buffer();
      T* dyq = s.y_numbered() ? nullptr : conv_thread_buffer<T>(kOutSlot, size_t(p.K * s.Q));
      for (int64_t n = p.N * slot / used; n < p.N * (slot + 1) / used; ++n) {
        const T* dy_n = dy + n * dy_ns;
        s.pad(x + n * x_ns, xp, 0, p.C);
        if (!s.y_numbered()) s.spread(dy_n, dyq, 0, p.K);  // dy_n already is in q numbering
        dw_rows_sample(s, xp, s.y_numbered() ? dy_n : dyq, mine);
      }
    }
  } else {
    T* xp = s.input_buffer();
    T* dyq = s.y_numbered() ? nullptr : conv_thread_buffer<T>(kOutSlot, size_t(p.K * s.Q));
    for (int64_t n = 0; n < p.N; ++n) {
      const T* dy_n = dy + n * dy_ns;
#pragma omp parallel num_threads(team(used))
      {
        const int t = omp_get_thread_num(), T_ = omp_get_num_threads();
        s.pad(x + n * x_ns, xp, p.C * t / T_, p.C * (t + 1) / T_);
        if (!s.y_numbered()) s.spread(dy_n, dyq, p.K * t / T_, p.K * (t + 1) / T_);
      }
      gemm_offset_rows_a<T>(true, crs, p.K, s.Q, T(1), xp, s.offs.data(), s.y_numbered() ? dy_n : dyq, s.Q, T(1),
                            acc.data(), p.K, threads);
    }
  }
  // dw[k][crs] = sum over threads of dwT[crs][k]
#pragma omp parallel for schedule(static) num_threads(team(used)) if (threads)
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
// On one thread with several taps per channel the rows are added tile by tile instead (no dcol).
// `par`: threads split the GEMM and the channels.
template <typename T>
void input_grad_sample(const Shifted<T>& s, const T* w, const T* dy_n, T* dx_n, bool par) {
  const Conv2dParams& p = s.p;
  const int64_t crs = p.crs(), rows_per_c = p.kh * p.kw;
  const int64_t qc_max = std::max<int64_t>(256, (int64_t(1) << 18) / crs);
  T* gp = conv_thread_buffer<T>(kPadSlot, size_t(s.xlen));
  T* dyq = conv_thread_buffer<T>(kOutSlot, size_t(p.K * s.Q));
  const int nt = par ? num_threads() : 1;
#pragma omp parallel num_threads(team(nt))
  {
    const int t = omp_get_thread_num(), T_ = omp_get_num_threads();
    std::fill(gp + s.xlen * t / T_, gp + s.xlen * (t + 1) / T_, T(0));
    s.spread(dy_n, dyq, p.K * t / T_, p.K * (t + 1) / T_);
  }
  if (!par && rows_per_c > 1) {
    // On one thread each tile of w^T dy is added into its rows of gp straight from L1: 6-10% less
    // time than the column matrix's round trip through L2 (benchmarks/results/conv.md, "tiles
    // added straight into their rows"). Threaded GEMMs keep the column matrix: rows of one
    // channel overlap in gp.
    gemm_add_to_rows<T>(true, false, crs, s.Q, p.K, T(1), w, crs, dyq, s.Q, gp, s.offs.data());
  } else {
    T* dcol = conv_thread_buffer<T>(kColSlot, size_t(crs * std::min(qc_max, s.Q)));
    for (int64_t q0 = 0; q0 < s.Q; q0 += qc_max) {
      const int64_t qc = std::min(qc_max, s.Q - q0);
      gemm<T>(true, false, crs, qc, p.K, T(1), w, crs, dyq + q0, s.Q, T(0), dcol, qc, par);
      // rows of one channel stay inside that channel's planes, so channels never collide
#pragma omp parallel for schedule(static) num_threads(team(nt))
      for (int64_t c = 0; c < p.C; ++c)
        for (int64_t r = c * rows_per_c; r < (c + 1) * rows_per_c; ++r) {
          s.rows_isa.accumulate(dcol + r * qc, qc, gp + s.offs[r] + q0);
        }
    }
  }
#pragma omp parallel num_threads(team(nt))
  {
    const int t = omp_get_thread_num(), T_ = omp_get_num_threads();
    s.unpad(gp, dx_n, p.C * t / T_, p.C * (t + 1) / T_);
  }
}

template <typename T>
void conv2d_input_grad_shifted(const Conv2dParams& p, const T* w, const T* dy, T* dx) {
  const Shifted<T> s(p, static_cast<const T*>(nullptr), false);  // col2im needs the phase layout
  const int nt = num_threads();
  const bool threads = threads_for_flops(2.0 * double(p.N * p.K) * double(p.out_plane() * p.crs())) > 1;
  if (threads && p.N >= nt) {
#pragma omp parallel for schedule(dynamic) num_threads(team(nt))
    for (int64_t n = 0; n < p.N; ++n)
      input_grad_sample(s, w, dy + n * p.K * p.out_plane(), dx + n * p.C * p.in_plane(), false);
    return;
  }
  for (int64_t n = 0; n < p.N; ++n)
    input_grad_sample(s, w, dy + n * p.K * p.out_plane(), dx + n * p.C * p.in_plane(), threads);
}

template void conv2d_input_grad_shifted<float>(const Conv2dParams&, const float*, const float*, float*);
template void conv2d_input_grad_shifted<double>(const Conv2dParams&, const double*, const double*, double*);
template void conv2d_weight_grad_shifted<float>(const Conv2dParams&, const float*, const float*, float*, int64_t,
                                                int64_t);
template void conv2d_weight_grad_shifted<double>(const Conv2dParams&, const double*, const double*, double*, int64_t,
                                                 int64_t);

}  // namespace dk::cpu
