// The nvcc translation unit for pooling (float32, float16, bfloat16; float64 is in pooling_f64.cu).
#include "cuda/pooling/pooling_kernels.cuh"
#include "cuda/pooling/pooling_launch.cuh"
