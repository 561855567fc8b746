// float64 LSTM: the only LSTM kernels that may compute in double, so CMakeLists compiles *_f64.cu
// without ptxas's -warn-double-usage (every other CUDA file has it, as an error).
#include "cuda/lstm/lstm_sequence.cuh"

namespace dk::cuda {

template void lstm_forward_typed<double>(const LstmParams&, const double*, const double*, const double*, const double*,
                                         const double*, const double*, const double*, double*, double*, double*,
                                         double*, double*, double*, double*, double*, cudaStream_t);
template void lstm_backward_typed<double>(const LstmParams&, const double*, const double*, const double*, const double*,
                                          const double*, const double*, const double*, const double*, double*, double*,
                                          double*, double*, double*, double*, double*, double*, cudaStream_t);

}  // namespace dk::cuda
