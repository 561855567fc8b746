// float32 LSTM pointwise kernels compiled for AVX2 (called only when best_isa() allows it).
#define DK_LSTM_NS lstm_avx2
#include "cpu/lstm/lstm_pointwise.h"
#include "cpu/lstm/lstm_pointwise_impl.h"

namespace dk::cpu {

const LstmPointwise<float>& lstm_pointwise_f32_avx2() {
  static const LstmPointwise<float> table{&lstm_avx2::forward_row<float>, &lstm_avx2::backward_row<float>};
  return table;
}

}  // namespace dk::cpu
