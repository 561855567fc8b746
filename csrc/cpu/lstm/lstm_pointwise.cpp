// LSTM pointwise kernels at the baseline ISA, and the run-time choice of the float32 table.
#include "cpu/lstm/lstm_pointwise.h"

#include "cpu/lstm/lstm_pointwise_impl.h"

namespace dk::cpu {

template <>
const LstmPointwise<float>& lstm_pointwise<float>() {
  static const LstmPointwise<float>& table = DK_ISA_PICK(const LstmPointwise<float>& (*)(), lstm::pointwise_f32)();
  return table;
}

template <>
const LstmPointwise<double>& lstm_pointwise<double>() {
  static const LstmPointwise<double> table{&isa_generic::lstm::forward_row<double>,
                                           &isa_generic::lstm::backward_row<double>};
  return table;
}

}  // namespace dk::cpu
