// The pooling translation unit: nvcc compiles it into deepkern._cuda, g++ with the SIMT
// simulator into deepkern._cuda_sim. Kernels and launchers live in the .cuh files.
#include "cuda/pooling/avg_pool2d.cuh"
#include "cuda/pooling/max_pool2d.cuh"
