// The positions-as-rows micro-kernel (conv2d_posrows_kernel.h) compiled for avx2.
#include "cpu/conv2d/conv2d_posrows_kernel_impl.h"
