#pragma once
// What every kernel file includes: the CUDA headers under nvcc, the SIMT simulator's
// replacements under g++ (-DDEEPKERN_SIMT=1), plus DK_DYNAMIC_SHARED and the numeric helpers.
// (Interim copy written by the LSTM work so its kernels build with nvcc before the simulator
// lands; the simulator branch owns this file and its version wins at merge.)
#ifdef DEEPKERN_SIMT
#include "simt/device.h"
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#define DK_DYNAMIC_SHARED(T, name) extern __shared__ __align__(16) unsigned char dk_dyn_smem_[]; T* name = reinterpret_cast<T*>(dk_dyn_smem_)
#endif

#include "cuda/common/numeric.cuh"
