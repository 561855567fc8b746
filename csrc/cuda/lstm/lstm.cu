// The nvcc translation unit of the LSTM kernels (the simulator build compiles the same file).
#include "cuda/lstm/lstm_sequence.cuh"
