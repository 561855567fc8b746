// The nvcc translation unit of the attention kernels (the simulator compiles the same file with g++).
#include "cuda/attention/attention_dispatch.cuh"
