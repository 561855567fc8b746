// deepkern._cuda: the CUDA kernels. Arrays arrive as raw device pointers (cupy's
// .data.ptr) plus a dtype code and cupy's current stream; op families register themselves.
#include <pybind11/pybind11.h>

#include "bindings/registry.h"

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "deepkern CUDA kernels";
  for (auto fn : dk::bind::registry()) fn(m);
}
