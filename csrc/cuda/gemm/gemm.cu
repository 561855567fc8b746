// nvcc translation unit for the plain GEMM (float64 is in gemm_f64.cu); the simulator build compiles
// this same file with g++.
#include "cuda/gemm/gemm_launch.cuh"
