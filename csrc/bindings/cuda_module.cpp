// deepkern._cuda (or _cuda_sim): the CUDA kernels. Arrays arrive as raw device pointers (cupy's
// .data.ptr) plus a dtype code and cupy's current stream; op families register themselves.
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/registry.h"

// DK_CUDA_MODULE_NAME: _cuda (nvcc-built kernels) or _cuda_sim (the same kernels on the simulator).
#ifndef DK_CUDA_MODULE_NAME
#define DK_CUDA_MODULE_NAME _cuda
#endif

PYBIND11_MODULE(DK_CUDA_MODULE_NAME, m) {
  // The nvcc-built and the simulator-built kernels share names: never both in one process.
#ifdef DEEPKERN_SIMT
  const char* other = "deepkern._cuda";
#else
  const char* other = "deepkern._cuda_sim";
#endif
  if (pybind11::module_::import("sys").attr("modules").contains(other))
    throw pybind11::import_error(std::string("deepkern: ") + other +
                                 " is already loaded in this process; "
                                 "_cuda and _cuda_sim never load together (see DEEPKERN_CUDA_SIM)");
#ifdef DEEPKERN_SIMT
  m.doc() = "deepkern CUDA kernels on the SIMT host simulator (host pointers; tests only)";
#else
  m.doc() = "deepkern CUDA kernels";
#endif
  for (auto fn : dk::bind::registry()) fn(m);
}
