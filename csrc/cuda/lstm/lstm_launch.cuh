#pragma once
// The LSTM entry points declared in lstm.h: switch on the element type once and run the typed
// sequence (float32 and float16 here; float64's instances live in lstm_f64.cu).
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/lstm/lstm.h"
#include "cuda/lstm/lstm_sequence.cuh"

namespace dk::cuda {

// Calls fn with a null pointer of the element type dt names (float, double, __half).
template <typename Fn>
void lstm_dispatch(DType dt, const char* op, Fn&& fn) {
  switch (dt) {
    case DType::Float32: fn(static_cast<float*>(nullptr)); break;
    case DType::Float64: fn(static_cast<double*>(nullptr)); break;
    case DType::Float16: fn(static_cast<__half*>(nullptr)); break;
    default: throw std::invalid_argument(std::string(op) + ": unsupported dtype (float16, float32, float64)");
  }
}

#define DK_LSTM_ELEM(tag) std::remove_pointer_t<decltype(tag)>

void lstm_forward(const LstmParams& p, DType dt, const void* x, const void* h0, const void* c0, const void* w_ih,
                  const void* w_hh, const void* b_ih, const void* b_hh, void* y, void* hT, void* cT, void* gates,
                  void* xh, void* cs, void* proj, void* cbuf, uintptr_t stream) {
  lstm_dispatch(dt, "lstm_forward", [&](auto* tag) {
    using T = DK_LSTM_ELEM(tag);
    using A = typename Acc<T>::type;
    lstm_forward_typed<T>(p, static_cast<const T*>(x), static_cast<const T*>(h0), static_cast<const T*>(c0),
                          static_cast<const T*>(w_ih), static_cast<const T*>(w_hh), static_cast<const T*>(b_ih),
                          static_cast<const T*>(b_hh), static_cast<T*>(y), static_cast<T*>(hT), static_cast<T*>(cT),
                          static_cast<T*>(gates), static_cast<T*>(xh), static_cast<T*>(cs), static_cast<A*>(proj),
                          static_cast<T*>(cbuf), as_stream(stream));
  });
}

void lstm_backward(const LstmParams& p, DType dt, const void* xh, const void* w_ih, const void* w_hh, const void* gates,
                   const void* cs, const void* dy, const void* dhT, const void* dcT, void* dx, void* dh0, void* dc0,
                   void* dw_ih, void* dw_hh, void* db, void* dgates, void* dcbuf, uintptr_t stream) {
  lstm_dispatch(dt, "lstm_backward", [&](auto* tag) {
    using T = DK_LSTM_ELEM(tag);
    using A = typename Acc<T>::type;
    lstm_backward_typed<T>(p, static_cast<const T*>(xh), static_cast<const T*>(w_ih), static_cast<const T*>(w_hh),
                           static_cast<const T*>(gates), static_cast<const T*>(cs), static_cast<const T*>(dy),
                           static_cast<const T*>(dhT), static_cast<const T*>(dcT), static_cast<T*>(dx),
                           static_cast<T*>(dh0), static_cast<T*>(dc0), static_cast<T*>(dw_ih), static_cast<T*>(dw_hh),
                           static_cast<T*>(db), static_cast<T*>(dgates), static_cast<A*>(dcbuf), as_stream(stream));
  });
}

LstmPathInfo lstm_path(const LstmParams& p, DType dt, bool backward) {
  LstmPathInfo info;
  lstm_dispatch(dt, "lstm_path", [&](auto* tag) {
    using T = DK_LSTM_ELEM(tag);
    if constexpr (lstm_has_persistent<T>()) {
      const LstmPersistentPlan plan = backward ? lstm_bwd_persistent_plan<T>(p.H) : lstm_fwd_persistent_plan<T>(p.H);
      info.fits = plan.fits;
      info.blocks = plan.blocks;
      info.blocks_per_sm = plan.blocks_per_sm;
      info.sms = plan.sms;
      info.smem = plan.smem;
      info.why = plan.why;
      info.persistent = lstm_use_persistent(plan, backward ? "lstm_backward" : "lstm_forward");
    } else {
      info.why = "float64 has no persistent kernel";
      (void)lstm_path_from_env();  // a bad override is an error for every dtype
    }
  });
  return info;
}

#undef DK_LSTM_ELEM

}  // namespace dk::cuda
