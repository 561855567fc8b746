#pragma once
// Device-side basics every kernel file includes (nvcc-only stand-in until the simulator's
// version of this header lands; the contract's names, nothing more).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define DK_DYNAMIC_SHARED(T, name) extern __shared__ __align__(16) unsigned char dk_dyn_smem_##name[]; \
  T* name = reinterpret_cast<T*>(dk_dyn_smem_##name)
