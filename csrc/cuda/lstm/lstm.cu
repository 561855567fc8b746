// The LSTM translation unit (float32, float16; float64 is in lstm_f64.cu): nvcc compiles it into
// deepkern._cuda, g++ with the SIMT simulator into deepkern._cuda_sim.
#include "cuda/lstm/lstm_launch.cuh"
