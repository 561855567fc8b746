// AVX2 + FMA copy of the attention kernels (called only when best_isa() allows it).
#include "cpu/attention/attention_impl.h"
