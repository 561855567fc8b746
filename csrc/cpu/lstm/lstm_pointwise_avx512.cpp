// float32 LSTM pointwise kernels compiled for AVX512 (called only when best_isa() allows it).
#define DK_LSTM_NS lstm_avx512
#include "cpu/lstm/lstm_pointwise.h"
#include "cpu/lstm/lstm_pointwise_impl.h"

namespace dk::cpu {

const LstmPointwise<float>& lstm_pointwise_f32_avx512() {
  static const LstmPointwise<float> table{&lstm_avx512::forward_row<float>, &lstm_avx512::backward_row<float>};
  return table;
}

}  // namespace dk::cpu
