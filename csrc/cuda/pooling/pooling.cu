// The pooling translation unit (float32, float16, bfloat16; float64 is in pooling_f64.cu): nvcc
// compiles it into deepkern._cuda, g++ with the SIMT simulator into deepkern._cuda_sim.
#include "cuda/pooling/pooling_launch.cuh"
