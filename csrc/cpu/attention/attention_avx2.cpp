// AVX2 + FMA build of the attention kernels (called only when best_isa() allows it).
#include "cpu/attention/attention_kernels.h"

#define DK_ATTN_NS attn_avx2
#define DK_VB 32
#define DK_MR 6
#define DK_MCV 2
#include "cpu/attention/attention_impl.h"
