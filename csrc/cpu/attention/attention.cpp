// Generic copy of the attention kernels, and the run-time choice between the per-ISA copies.
#include "cpu/attention/attention.h"

#include "cpu/attention/attention_impl.h"

namespace dk::cpu {

template <typename T>
void attention_forward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask, const int64_t* moff,
                       T* out, T* lse) {
  using Fn = void (*)(const AttentionParams&, const T*, const T*, const T*, const T*, const int64_t*, T*, T*);
  static const Fn fn = DK_ISA_PICK(Fn, attention::forward<T>);
  fn(p, q, k, v, mask, moff, out, lse);
}

template <typename T>
void attention_backward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask,
                        const int64_t* moff, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  using Fn = void (*)(const AttentionParams&, const T*, const T*, const T*, const T*, const int64_t*, const T*,
                      const T*, const T*, T*, T*, T*);
  static const Fn fn = DK_ISA_PICK(Fn, attention::backward<T>);
  fn(p, q, k, v, mask, moff, out, lse, dout, dq, dk, dv);
}

const char* attention_isa() { return isa_name(best_isa()); }

#define DK_INSTANTIATE_ATTENTION(T)                                                                                   \
  template void attention_forward<T>(const AttentionParams&, const T*, const T*, const T*, const T*, const int64_t*,  \
                                     T*, T*);                                                                         \
  template void attention_backward<T>(const AttentionParams&, const T*, const T*, const T*, const T*, const int64_t*, \
                                      const T*, const T*, const T*, T*, T*, T*);
DK_INSTANTIATE_ATTENTION(float)
DK_INSTANTIATE_ATTENTION(double)
#undef DK_INSTANTIATE_ATTENTION

}  // namespace dk::cpu
