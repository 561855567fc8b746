#pragma once
// The LSTM over a whole sequence on the GPU: the all-steps GEMMs (input projection; dx;
// [dW_ih | dW_hh] in one GEMM over all T*B rows) around the recurrence, which is either one
// persistent cooperative launch (float32/float16, where it fits: lstm_persistent_plan.h) or one
// fused step launch per time step, replayed as a CUDA graph (step_graph.h).
#include <type_traits>

#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"
#include "cuda/common/step_graph.h"
#include "cuda/lstm/lstm.h"
#include "cuda/lstm/lstm_aux.cuh"
#include "cuda/lstm/lstm_gemm.cuh"
#include "cuda/lstm/lstm_persistent.cuh"
#include "cuda/lstm/lstm_persistent_plan.h"
#include "cuda/lstm/lstm_step.cuh"

namespace dk::cuda {

// One graph cache per recurrence (leaked: graphs must not be destroyed after the CUDA runtime).
inline StepGraphCache& lstm_fwd_graphs() {
  static StepGraphCache* c = new StepGraphCache;
  return *c;
}
inline StepGraphCache& lstm_bwd_graphs() {
  static StepGraphCache* c = new StepGraphCache;
  return *c;
}

template <typename T>
constexpr bool lstm_has_persistent() {
  return !std::is_same_v<T, double>;
}

template <typename T>
LstmPersistentPlan lstm_fwd_persistent_plan(int64_t H) {
  using A = typename Acc<T>::type;
  using namespace lstm_persist;
  return lstm_persistent_plan(lstm_fwd_persistent_kernel<T, A>, blocks(H), kThreads, fwd_smem<T>(H),
                              fwd_static_smem<A>());
}

template <typename T>
LstmPersistentPlan lstm_bwd_persistent_plan(int64_t H) {
  using A = typename Acc<T>::type;
  using namespace lstm_persist;
  return lstm_persistent_plan(lstm_bwd_persistent_kernel<T, A>, blocks(H), kThreads, bwd_smem<T>(H),
                              bwd_static_smem<A>());
}

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
  if constexpr (lstm_has_persistent<T>()) {
    if (lstm_use_persistent(lstm_fwd_persistent_plan<T>(H), "lstm_forward")) {
      LstmFwdSeq<T, A> s{p.T, B, H, proj, w_hh, b_ih, b_hh, h0, c0, y, gates, xh, XH, I, cs, cbuf, hT, cT};
      using namespace lstm_persist;
      launch_cooperative(lstm_fwd_persistent_kernel<T, A>, dim3(blocks(H)), dim3(kThreads), fwd_smem<T>(H), stream, s);
      return;
    }
  }
  auto steps = [&](cudaStream_t st) {
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
      launch_lstm_fwd_step(s, st);
    }
  };
  auto u = [](const void* q) { return reinterpret_cast<uintptr_t>(q); };
  lstm_fwd_graphs().run(
      {p.T, B, I, H, int64_t(sizeof(T))},
      {u(proj), u(w_hh), u(b_ih), u(b_hh), u(h0), u(c0), u(y), u(gates), u(xh), u(cs), u(cbuf), u(hT), u(cT)}, stream,
      steps);
}

template <typename T>
void lstm_backward_typed(const LstmParams& p, const T* xh, const T* w_ih, const T* w_hh, const T* gates, const T* cs,
                         const T* dy, const T* dhT, const T* dcT, T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db,
                         T* dgates, typename Acc<T>::type* dcbuf, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const int64_t B = p.B, H = p.H, G = p.G(), BH = B * H, I = p.I, XH = I + H, TB = p.rows();
  bool persistent = false;
  if constexpr (lstm_has_persistent<T>()) {
    if (lstm_use_persistent(lstm_bwd_persistent_plan<T>(H), "lstm_backward")) {
      LstmBwdSeq<T, A> s{p.T, B, H, w_hh, gates, cs, dy, dhT, dcT, dgates, dcbuf, dc0};
      using namespace lstm_persist;
      launch_cooperative(lstm_bwd_persistent_kernel<T, A>, dim3(blocks(H)), dim3(kThreads), bwd_smem<T>(H), stream, s);
      persistent = true;
    }
  }
  auto steps = [&](cudaStream_t st) {
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
      launch_lstm_bwd_step(s, st);
    }
  };
  if (!persistent) {
    auto u = [](const void* q) { return reinterpret_cast<uintptr_t>(q); };
    lstm_bwd_graphs().run({p.T, B, I, H, int64_t(sizeof(T))},
                          {u(w_hh), u(gates), u(cs), u(dy), u(dhT), u(dcT), u(dgates), u(dcbuf), u(dc0)}, stream,
                          steps);
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
