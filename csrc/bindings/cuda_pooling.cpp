// Bindings for pooling on the GPU: a params dict (bindings/pool_fields.h), a dtype code, device
// pointers and a stream in; launch without the GIL.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/cuda_pointers.h"
#include "bindings/pool_fields.h"
#include "bindings/registry.h"
#include "cuda/pooling/pooling.h"

namespace dk::bind {
namespace {

namespace py = pybind11;

// The four entries share a shape (params, pointers, GIL, launcher); each names its own arrays.
void register_pooling(py::module_& m) {
  m.def(
      "max_pool2d_forward",
      [](py::dict params, int dtype, uintptr_t x, uintptr_t y, uintptr_t indices, uintptr_t stream) {
        auto p = pool_params(params);
        py::gil_scoped_release nogil;
        cuda::max_pool2d_forward(p, static_cast<DType>(dtype), device_ptr<const void>(x), device_ptr<void>(y),
                                 device_ptr<int64_t>(indices), stream);
      },
      "Max pooling into y and the int64 argmax indices (flat positions in each input plane).", py::arg("params"),
      py::arg("dtype"), py::arg("x"), py::arg("y"), py::arg("indices"), py::arg("stream"));
  m.def(
      "max_pool2d_backward",
      [](py::dict params, int dtype, uintptr_t dy, uintptr_t indices, uintptr_t dx, uintptr_t stream) {
        auto p = pool_params(params);
        py::gil_scoped_release nogil;
        cuda::max_pool2d_backward(p, static_cast<DType>(dtype), device_ptr<const void>(dy),
                                  device_ptr<const int64_t>(indices), device_ptr<void>(dx), stream);
      },
      "dx (all written): each dy element added at its forward argmax.", py::arg("params"), py::arg("dtype"),
      py::arg("dy"), py::arg("indices"), py::arg("dx"), py::arg("stream"));
  m.def(
      "avg_pool2d_forward",
      [](py::dict params, int dtype, uintptr_t x, uintptr_t y, uintptr_t stream) {
        auto p = pool_params(params);
        py::gil_scoped_release nogil;
        cuda::avg_pool2d_forward(p, static_cast<DType>(dtype), device_ptr<const void>(x), device_ptr<void>(y), stream);
      },
      "Average pooling into y (the window's size clipped to the padded input divides each sum).", py::arg("params"),
      py::arg("dtype"), py::arg("x"), py::arg("y"), py::arg("stream"));
  m.def(
      "avg_pool2d_backward",
      [](py::dict params, int dtype, uintptr_t dy, uintptr_t dx, uintptr_t stream) {
        auto p = pool_params(params);
        py::gil_scoped_release nogil;
        cuda::avg_pool2d_backward(p, static_cast<DType>(dtype), device_ptr<const void>(dy), device_ptr<void>(dx),
                                  stream);
      },
      "dx (all written): each dy element spread over its window, divided as in the forward.", py::arg("params"),
      py::arg("dtype"), py::arg("dy"), py::arg("dx"), py::arg("stream"));
}

DK_REGISTER_BINDINGS(register_pooling);

}  // namespace
}  // namespace dk::bind
