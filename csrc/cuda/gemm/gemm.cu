// nvcc translation unit for the plain GEMM (the simulator build compiles this same file with g++).
#include "cuda/gemm/gemm_plain.cuh"
