// AVX-512 build of the attention kernels (called only when best_isa() allows it).
#include "cpu/attention/attention_kernels.h"

#define DK_ATTN_NS attn_avx512
#define DK_VB 64
#define DK_MR 6
#define DK_MCV 4
#include "cpu/attention/attention_impl.h"
