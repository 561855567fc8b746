// deepkern._cuda (or _cuda_sim): the CUDA kernels. Arrays arrive as raw device pointers (cupy's
// .data.ptr) plus a dtype code and cupy's current stream; op families register themselves.
#include <pybind11/pybind11.h>

#include "bindings/registry.h"

// DK_CUDA_MODULE_NAME: _cuda (nvcc-built kernels) or _cuda_sim (the same kernels on the simulator).
#ifndef DK_CUDA_MODULE_NAME
#define DK_CUDA_MODULE_NAME _cuda
#endif

PYBIND11_MODULE(DK_CUDA_MODULE_NAME, m) {
#ifdef DEEPKERN_SIMT
  m.doc() = "deepkern CUDA kernels on the SIMT host simulator (host pointers; tests only)";
#else
  m.doc() = "deepkern CUDA kernels";
#endif
  for (auto fn : dk::bind::registry()) fn(m);
}
