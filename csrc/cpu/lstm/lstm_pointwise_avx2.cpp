// float32 LSTM pointwise kernels compiled for AVX2 (called only when best_isa() allows it):
// lstm_pointwise_impl.h in this copy's namespace.
#include "cpu/lstm/lstm_pointwise.h"
#include "cpu/lstm/lstm_pointwise_impl.h"
