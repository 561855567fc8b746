#pragma once
// Which recurrence an LSTM call runs: the persistent kernel where it fits, else one launch per
// step. Fit rule: float32/float16 only; the block's W_hh slice (dynamic) plus its staging tile
// (static) within the device's opt-in shared memory per block; and the grid co-resident:
// blocks <= SMs x cudaOccupancyMaxActiveBlocksPerMultiprocessor (the simulator answers that from
// an H100-like SM model, see csrc/simt/runtime.cpp). DEEPKERN_LSTM_PERSISTENT=0 forces the
// per-step path, =1 the persistent one (an error where it does not fit), unset or "auto" chooses.
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda/common/device.cuh"
#include "cuda/common/launch.h"

namespace dk::cuda {

struct LstmPersistentPlan {
  bool fits = false;
  unsigned blocks = 0;    // grid size: one block per lstm_persist::kU hidden units
  int blocks_per_sm = 0;  // occupancy API's answer for this kernel, block size and shared memory
  int sms = 0;
  size_t smem = 0;  // dynamic + static bytes per block
  std::string why;  // why not, when it does not fit
};

enum class LstmPath { Auto, Step, Persistent };

inline LstmPath lstm_path_from_env() {
  const char* e = std::getenv("DEEPKERN_LSTM_PERSISTENT");
  if (!e || !*e || !std::strcmp(e, "auto")) return LstmPath::Auto;
  if (!std::strcmp(e, "0")) return LstmPath::Step;
  if (!std::strcmp(e, "1")) return LstmPath::Persistent;
  throw std::invalid_argument(std::string("DEEPKERN_LSTM_PERSISTENT='") + e + "': expected 0, 1 or auto");
}

inline void lstm_cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("deepkern lstm: ") + what + " failed: " + cudaGetErrorString(err));
  }
}

// kernel: the persistent kernel instance; dyn: its dynamic shared memory; stat: its static.
template <typename... P>
LstmPersistentPlan lstm_persistent_plan(void (*kernel)(P...), unsigned blocks, int threads, size_t dyn, size_t stat) {
  LstmPersistentPlan plan;
  plan.blocks = blocks;
  plan.smem = dyn + stat;
  int dev = 0, optin = 0, coop = 0;
  lstm_cuda_check(cudaGetDevice(&dev), "cudaGetDevice");
  lstm_cuda_check(cudaDeviceGetAttribute(&plan.sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  lstm_cuda_check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
                  "cudaDeviceGetAttribute");
  lstm_cuda_check(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev), "cudaDeviceGetAttribute");
  if (!coop) {
    plan.why = "the device has no cooperative launch";
    return plan;
  }
  if (plan.smem > size_t(optin)) {
    plan.why = "the W_hh slice needs " + std::to_string(plan.smem) + " bytes of shared memory per block, over " +
               std::to_string(optin);
    return plan;
  }
  if (dyn > 48 * 1024) set_max_dynamic_shared(kernel, dyn);
  lstm_cuda_check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&plan.blocks_per_sm,
                                                                reinterpret_cast<const void*>(kernel), threads, dyn),
                  "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  if (int64_t(blocks) > int64_t(plan.sms) * plan.blocks_per_sm) {
    plan.why = std::to_string(blocks) + " blocks cannot be co-resident (" + std::to_string(plan.sms) + " SMs x " +
               std::to_string(plan.blocks_per_sm) + " blocks per SM)";
    return plan;
  }
  plan.fits = true;
  return plan;
}

// True for the persistent kernel: by the env override, else by the plan.
inline bool lstm_use_persistent(const LstmPersistentPlan& plan, const char* op) {
  switch (lstm_path_from_env()) {
    case LstmPath::Step: return false;
    case LstmPath::Auto: return plan.fits;
    case LstmPath::Persistent:
      if (!plan.fits)
        throw std::runtime_error(std::string(op) +
                                 ": DEEPKERN_LSTM_PERSISTENT=1 but the persistent kernel does not fit: " + plan.why);
      return true;
  }
  return false;
}

}  // namespace dk::cuda
