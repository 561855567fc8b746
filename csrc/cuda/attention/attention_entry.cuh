#pragma once
// The host entry points declared in attention.h: switch on the element type, then on the head dims.
#include "cuda/attention/attention_dispatch.cuh"

namespace dk::cuda {

void attention_forward(const AttentionParams& p, DType dt, const void* q, const void* k, const void* v,
                       const void* mask, const int64_t* moff, void* out, void* lse, uintptr_t stream) {
  if (p.BH == 0 || p.Lq == 0) return;
  const cudaStream_t s = as_stream(stream);
  switch (dt) {
    case DType::Float32: attn::forward_typed<float>(p, q, k, v, mask, moff, out, lse, s); break;
    case DType::Float64: attn::forward_typed<double>(p, q, k, v, mask, moff, out, lse, s); break;
    case DType::Float16:
      if (p.D == p.Dv && (p.D == 64 || p.D == 128)) {  // tensor cores
        auto h = [](const void* x) { return static_cast<const __half*>(x); };
        if (p.D == 64)
          attn::launch_fwd_mma<64>(p, h(q), h(k), h(v), h(mask), moff, static_cast<__half*>(out),
                                   static_cast<float*>(lse), s);
        else
          attn::launch_fwd_mma<128>(p, h(q), h(k), h(v), h(mask), moff, static_cast<__half*>(out),
                                    static_cast<float*>(lse), s);
      } else {
        attn::forward_typed<__half>(p, q, k, v, mask, moff, out, lse, s);
      }
      break;
    default: throw std::invalid_argument("attention_forward (CUDA): dtype must be float16, float32 or float64");
  }
}

void attention_backward(const AttentionParams& p, DType dt, const void* q, const void* k, const void* v,
                        const void* mask, const int64_t* moff, const void* out, const void* lse, const void* dout,
                        void* dq, void* dk, void* dv, void* drow, void* dq_acc, bool deterministic, uintptr_t stream) {
  if (p.BH == 0) return;
  const cudaStream_t s = as_stream(stream);
  switch (dt) {
    case DType::Float32:
      attn::backward_typed<float>(p, q, k, v, mask, moff, out, lse, dout, dq, dk, dv, drow, dq_acc, deterministic, s);
      break;
    case DType::Float64:
      attn::backward_typed<double>(p, q, k, v, mask, moff, out, lse, dout, dq, dk, dv, drow, dq_acc, deterministic, s);
      break;
    case DType::Float16:
      if (p.D == p.Dv && (p.D == 64 || p.D == 128)) {  // tensor cores
        auto h = [](const void* x) { return static_cast<const __half*>(x); };
        auto w = [](void* x) { return static_cast<__half*>(x); };
        auto f = [](const void* x) { return static_cast<const float*>(x); };
        if (p.D == 64)
          attn::backward_mma<64>(p, h(q), h(k), h(v), h(mask), moff, h(out), f(lse), h(dout), w(dq), w(dk), w(dv),
                                 static_cast<float*>(drow), static_cast<float*>(dq_acc), deterministic, s);
        else
          attn::backward_mma<128>(p, h(q), h(k), h(v), h(mask), moff, h(out), f(lse), h(dout), w(dq), w(dk), w(dv),
                                  static_cast<float*>(drow), static_cast<float*>(dq_acc), deterministic, s);
      } else {
        attn::backward_typed<__half>(p, q, k, v, mask, moff, out, lse, dout, dq, dk, dv, drow, dq_acc, deterministic,
                                     s);
      }
      break;
    default: throw std::invalid_argument("attention_backward (CUDA): dtype must be float16, float32 or float64");
  }
}

}  // namespace dk::cuda
