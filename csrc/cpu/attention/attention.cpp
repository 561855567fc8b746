// Generic build of the attention kernels, and the run-time choice between the ISA builds.
#include "cpu/attention/attention.h"

#include "cpu/attention/attention_kernels.h"
#include "cpu/common/cpu_features.h"

#define DK_ATTN_NS attn_generic
#define DK_VB 16
#define DK_MR 4
#define DK_MCV 2
#include "cpu/attention/attention_impl.h"

namespace dk::cpu {

template <typename T>
void attention_forward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask,
                       const int64_t* moff, T* out, T* lse) {
  switch (best_isa()) {
    case Isa::Avx512: attn_avx512::attention_forward(p, q, k, v, mask, moff, out, lse); break;
    case Isa::Avx2Fma: attn_avx2::attention_forward(p, q, k, v, mask, moff, out, lse); break;
    default: attn_generic::attention_forward(p, q, k, v, mask, moff, out, lse); break;
  }
}

template <typename T>
void attention_backward(const AttentionParams& p, const T* q, const T* k, const T* v, const T* mask,
                        const int64_t* moff, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv) {
  switch (best_isa()) {
    case Isa::Avx512: attn_avx512::attention_backward(p, q, k, v, mask, moff, out, lse, dout, dq, dk, dv); break;
    case Isa::Avx2Fma: attn_avx2::attention_backward(p, q, k, v, mask, moff, out, lse, dout, dq, dk, dv); break;
    default: attn_generic::attention_backward(p, q, k, v, mask, moff, out, lse, dout, dq, dk, dv); break;
  }
}

const char* attention_isa() { return isa_name(best_isa()); }

#define DK_INSTANTIATE_ATTENTION(T)                                                                          \
  template void attention_forward<T>(const AttentionParams&, const T*, const T*, const T*, const T*,         \
                                     const int64_t*, T*, T*);                                                \
  template void attention_backward<T>(const AttentionParams&, const T*, const T*, const T*, const T*,        \
                                      const int64_t*, const T*, const T*, const T*, T*, T*, T*);
DK_INSTANTIATE_ATTENTION(float)
DK_INSTANTIATE_ATTENTION(double)
#undef DK_INSTANTIATE_ATTENTION

}  // namespace dk::cpu
