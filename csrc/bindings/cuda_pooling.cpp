// Bindings for pooling on the GPU: pointers and a stream in, launch without the GIL.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "bindings/registry.h"
#include "cuda/pooling/pooling.h"

namespace dk::bind {
namespace {

namespace py = pybind11;

Pool2dParams pool_params(const py::sequence& s) {
  if (py::len(s) != 12) throw py::value_error("pool params: expected 12 ints");
  std::vector<int64_t> v(12);
  for (size_t i = 0; i < 12; ++i) v[i] = s[i].cast<int64_t>();
  return Pool2dParams{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]};
}

void register_pooling(py::module_& m) {
  m.def("max_pool2d_forward",
        [](py::sequence params, int dtype, uintptr_t x, uintptr_t y, uintptr_t idx, uintptr_t stream) {
          auto p = pool_params(params);
          py::gil_scoped_release nogil;
          cuda::max_pool2d_forward(p, static_cast<DType>(dtype), reinterpret_cast<const void*>(x),
                                   reinterpret_cast<void*>(y), reinterpret_cast<int64_t*>(idx), stream);
        });
  m.def("max_pool2d_backward",
        [](py::sequence params, int dtype, uintptr_t dy, uintptr_t idx, uintptr_t dx, uintptr_t stream) {
          auto p = pool_params(params);
          py::gil_scoped_release nogil;
          cuda::max_pool2d_backward(p, static_cast<DType>(dtype), reinterpret_cast<const void*>(dy),
                                    reinterpret_cast<const int64_t*>(idx), reinterpret_cast<void*>(dx), stream);
        });
  m.def("avg_pool2d_forward", [](py::sequence params, int dtype, uintptr_t x, uintptr_t y, uintptr_t stream) {
    auto p = pool_params(params);
    py::gil_scoped_release nogil;
    cuda::avg_pool2d_forward(p, static_cast<DType>(dtype), reinterpret_cast<const void*>(x), reinterpret_cast<void*>(y),
                             stream);
  });
  m.def("avg_pool2d_backward", [](py::sequence params, int dtype, uintptr_t dy, uintptr_t dx, uintptr_t stream) {
    auto p = pool_params(params);
    py::gil_scoped_release nogil;
    cuda::avg_pool2d_backward(p, static_cast<DType>(dtype), reinterpret_cast<const void*>(dy),
                              reinterpret_cast<void*>(dx), stream);
  });
}

DK_REGISTER_BINDINGS(register_pooling);

}  // namespace
}  // namespace dk::bind
