// LSTM pointwise kernels at the baseline ISA, and the run-time choice of the float32 table.
#define DK_LSTM_NS lstm_generic
#include "cpu/lstm/lstm_pointwise.h"

#include "cpu/common/cpu_features.h"
#include "cpu/lstm/lstm_pointwise_impl.h"

namespace dk::cpu {

template <>
const LstmPointwise<float>& lstm_pointwise<float>() {
  static const LstmPointwise<float> generic{&lstm_generic::forward_row<float>, &lstm_generic::backward_row<float>};
  switch (best_isa()) {
    case Isa::Avx512: return lstm_pointwise_f32_avx512();
    case Isa::Avx2Fma: return lstm_pointwise_f32_avx2();
    default: return generic;
  }
}

template <>
const LstmPointwise<double>& lstm_pointwise<double>() {
  static const LstmPointwise<double> table{&lstm_generic::forward_row<double>, &lstm_generic::backward_row<double>};
  return table;
}

}  // namespace dk::cpu
