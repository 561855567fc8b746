// float32 softmax cross-entropy rows compiled for AVX512 (called only when best_isa() allows it):
// softmax_xent_impl.h in this copy's namespace.
#include "cpu/loss/softmax_xent_impl.h"
