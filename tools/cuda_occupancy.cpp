// Occupancy of CUDA kernels on an sm_90 H100/H200 without a GPU: cuda_occupancy.h (header-only, in
// the toolkit) with the device properties filled in by hand. Used by tools/cuda_static_check.py.
// stdin: one kernel per line, "block regs static_smem dynamic_smem"; stdout per line:
// "blocks_per_sm warps_per_sm occupancy_percent limiter".
#include <cuda_occupancy.h>

#include <cstdio>
#include <cstring>

int main() {
  cudaOccDeviceProp prop;
  prop.computeMajor = 9;
  prop.computeMinor = 0;
  prop.maxThreadsPerBlock = 1024;
  prop.maxThreadsPerMultiprocessor = 2048;
  prop.regsPerBlock = 65536;
  prop.regsPerMultiprocessor = 65536;
  prop.warpSize = 32;
  prop.sharedMemPerBlock = 48 * 1024;
  prop.sharedMemPerMultiprocessor = 228 * 1024;
  prop.numSms = 132;
  prop.sharedMemPerBlockOptin = 227 * 1024;
  prop.reservedSharedMemPerBlock = 1024;
  cudaOccDeviceState state;

  int block, regs;
  unsigned long static_smem, dyn_smem;
  while (std::scanf("%d %d %lu %lu", &block, &regs, &static_smem, &dyn_smem) == 4) {
    cudaOccFuncAttributes attr;
    attr.maxThreadsPerBlock = 1024;
    attr.numRegs = regs;
    attr.sharedSizeBytes = static_smem;
    attr.partitionedGCConfig = PARTITIONED_GC_OFF;
    // Kernels over 48 KiB opt in with cudaFuncSetAttribute (the launch contract requires it).
    attr.shmemLimitConfig = FUNC_SHMEM_LIMIT_OPTIN;
    attr.maxDynamicSharedSizeBytes = static_cast<int>(dyn_smem);
    attr.numBlockBarriers = 1;
    attr.virtualResourceCount = 0;
    cudaOccResult res;
    const cudaOccError err = cudaOccMaxActiveBlocksPerMultiprocessor(&res, &prop, &attr, &state, block, dyn_smem);
    if (err != CUDA_OCC_SUCCESS) {
      std::printf("0 0 0 error%d\n", static_cast<int>(err));
      continue;
    }
    const int blocks = res.activeBlocksPerMultiprocessor;
    const int warps = blocks * ((block + 31) / 32);
    // Every resource that alone allows only this many blocks, e.g. "warps+registers".
    static const struct { unsigned bit; const char* name; } kLimits[] = {
        {OCC_LIMIT_WARPS, "warps"},   {OCC_LIMIT_REGISTERS, "registers"}, {OCC_LIMIT_SHARED_MEMORY, "shared"},
        {OCC_LIMIT_BLOCKS, "blocks"}, {OCC_LIMIT_BARRIERS, "barriers"},
    };
    char limiter[96] = "";
    for (const auto& l : kLimits)
      if (res.limitingFactors & l.bit) {
        if (limiter[0]) std::strcat(limiter, "+");
        std::strcat(limiter, l.name);
      }
    if (!limiter[0]) std::strcpy(limiter, "-");
    std::printf("%d %d %.1f %s\n", blocks, warps, 100.0 * warps / (prop.maxThreadsPerMultiprocessor / 32), limiter);
  }
  return 0;
}
