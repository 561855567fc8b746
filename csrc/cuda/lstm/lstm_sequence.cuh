#pragma once
// The LSTM over a whole sequence on the GPU: the all-steps GEMMs (input projection; dx;
// [dW_ih | dW_hh] in one GEMM over all T*B rows) around one fused step launch per time step.
#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/lstm/lstm.h"
#include "cuda/lstm/lstm_aux.cuh"
#include "cuda/lstm/lstm_gemm.cuh"
#include "cuda/lstm/lstm_step.cuh"

namespace dk::cuda {

template <typename T>
void lstm_forward_typed(const LstmParams& p, const T* x, const T* h0, const T* c0, const T* w_ih, const T* w_hh,
                        const T* b_ih, const T* b_hh, T* y, T* hT, T* cT, T* gates, T* xh, T* cs,
                        typename Acc<T>::type* proj, T* cbuf, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const int64_t B = p.B, H = p.H, G = p.G(), BH = B * H, I = p.I, XH = I + H;
  // proj = X W_ih^T for all T*B rows at once (kept in the accumulator type).
  lstm_gemm::run<T>(p.rows(), G, I, lstm_gemm::ContigK<T>{x, I}, lstm_gemm::ContigK<T>{w_ih, I},
                    lstm_gemm::Store<A, A>{proj, G}, stream);
  if (xh) launch_lstm_save_inputs<T>(p, x, h0, c0, xh, cs, stream);
  for (int64_t t = 0; t < p.T; ++t) {
    const bool last = t == p.T - 1;
    LstmFwdStep<T, A> s{};
    s.B = B;
    s.H = H;
    s.proj = proj + t * B * G;
    s.w_hh = w_hh;
    s.b_ih = b_ih;
    s.b_hh = b_hh;
    s.h_prev = t == 0 ? h0 : y + (t - 1) * BH;
    if (cs) {
      s.c_prev = cs + t * BH;
      s.c_out = cs + (t + 1) * BH;
    } else {  // ping-pong; never in place
      s.c_prev = t == 0 ? c0 : cbuf + ((t - 1) % 2) * BH;
      s.c_out = cbuf + (t % 2) * BH;
    }
    s.h_out = y + t * BH;
    s.act = gates ? gates + t * B * G : nullptr;
    s.h_next_row = (xh && !last) ? xh + (t + 1) * B * XH + I : nullptr;
    s.xh_stride = XH;
    s.h_final = last ? hT : nullptr;
    s.c_final = last ? cT : nullptr;
    launch_lstm_fwd_step(s, stream);
  }
}

template <typename T>
void lstm_backward_typed(const LstmParams& p, const T* xh, const T* w_ih, const T* w_hh, const T* gates, const T* cs,
                         const T* dy, const T* dhT, const T* dcT, T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db,
                         T* dgates, typename Acc<T>::type* dcbuf, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const int64_t B = p.B, H = p.H, G = p.G(), BH = B * H, I = p.I, XH = I + H, TB = p.rows();
  for (int64_t t = p.T - 1; t >= 0; --t) {
    const bool last = t == p.T - 1;
    LstmBwdStep<T, A> s{};
    s.B = B;
    s.H = H;
    s.dg_next = last ? nullptr : dgates + (t + 1) * B * G;
    s.w_hh = w_hh;
    s.dy = dy ? dy + t * BH : nullptr;
    s.dh_last = last ? dhT : nullptr;
    s.dc_next = last ? nullptr : dcbuf + ((t + 1) % 2) * BH;
    s.dc_last = last ? dcT : nullptr;
    s.act = gates + t * B * G;
    s.c = cs + (t + 1) * BH;
    s.c_prev = cs + t * BH;
    s.dg = dgates + t * B * G;
    s.dc_prev = dcbuf + (t % 2) * BH;
    s.dc0 = t == 0 ? dc0 : nullptr;
    launch_lstm_bwd_step(s, stream);
  }
  // dh0 = dgates_0 W_hh; dx = dgates W_ih (all steps); [dW_ih | dW_hh] = dgates^T [X | H_prev] (one GEMM).
  using lstm_gemm::ContigK;
  using lstm_gemm::StridedK;
  if (dh0)
    lstm_gemm::run<T>(B, H, G, ContigK<T>{dgates, G}, StridedK<T>{w_hh, H}, lstm_gemm::Store<T, A>{dh0, H}, stream);
  lstm_gemm::run<T>(TB, I, G, ContigK<T>{dgates, G}, StridedK<T>{w_ih, I}, lstm_gemm::Store<T, A>{dx, I}, stream);
  lstm_gemm::run<T>(G, XH, TB, StridedK<T>{dgates, G}, StridedK<T>{xh, XH},
                    lstm_gemm::SplitCols<T, A>{dw_ih, I, dw_hh, H, I}, stream);
  if (db) launch_lstm_bias_grad<T, A>(TB, G, dgates, db, stream);
}

// float64 is instantiated only in lstm_f64.cu, the one LSTM file allowed to compute in double.
extern template void lstm_forward_typed<double>(const LstmParams&, const double*, const double*, const double*,
                                                const double*, const double*, const double*, const double*, double*,
                                                double*, double*, double*, double*, double*, double*, double*,
                                                cudaStream_t);
extern template void lstm_backward_typed<double>(const LstmParams&, const double*, const double*, const double*,
                                                 const double*, const double*, const double*, const double*,
                                                 const double*, double*, double*, double*, double*, double*, double*,
                                                 double*, double*, cudaStream_t);

}  // namespace dk::cuda
