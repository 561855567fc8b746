// nvcc translation unit for the conv2d kernels (float32 exact and TF32, float16; float64 is in
// conv2d_f64.cu); the simulator build compiles this same file with g++.
#include "cuda/conv2d/conv2d_launch.cuh"
