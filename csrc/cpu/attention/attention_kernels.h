#pragma once
// The per-ISA builds of the attention kernels (attention_impl.h compiled three times);
// attention.cpp picks one at run time with best_isa().
#include <cstdint>

#include "common/attention_params.h"

#define DK_ATTN_DECLARE(NS)                                                                                      \
  namespace dk::cpu::NS {                                                                                        \
  void attention_forward(const AttentionParams& p, const float* q, const float* k, const float* v,              \
                         const float* mask, const int64_t* moff, float* out, float* lse);                       \
  void attention_forward(const AttentionParams& p, const double* q, const double* k, const double* v,           \
                         const double* mask, const int64_t* moff, double* out, double* lse);                    \
  void attention_backward(const AttentionParams& p, const float* q, const float* k, const float* v,             \
                          const float* mask, const int64_t* moff, const float* out, const float* lse,           \
                          const float* dout, float* dq, float* dk, float* dv);                                  \
  void attention_backward(const AttentionParams& p, const double* q, const double* k, const double* v,          \
                          const double* mask, const int64_t* moff, const double* out, const double* lse,        \
                          const double* dout, double* dq, double* dk, double* dv);                              \
  }
DK_ATTN_DECLARE(attn_generic)
DK_ATTN_DECLARE(attn_avx2)
DK_ATTN_DECLARE(attn_avx512)
#undef DK_ATTN_DECLARE
