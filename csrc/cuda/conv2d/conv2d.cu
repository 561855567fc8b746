// nvcc translation unit for the conv2d kernels (the simulator build compiles this same file with g++).
#include "cuda/conv2d/conv2d_gemm.cuh"
