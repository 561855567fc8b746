// Internal bindings of the ReLU kernels for nn.ReLU (not public API):
//   _cpu.relu_forward(x, y, active)    y = relu(x), active = !(y <= 0) as uint8/bool
//   _cpu.relu_backward(dy, active, dx) dx = active ? dy : 0
#include "bindings/cpu_arrays.h"
#include "bindings/registry.h"
#include "cpu/relu/relu.h"

namespace dk::bind {
namespace {

const uint8_t* mask_in(const py::array& a, int64_t n) {
  check_contiguous(a, "active");
  if (a.itemsize() != 1) throw py::type_error("active: expected a bool or uint8 array");
  check_size(a, n, "active");
  return static_cast<const uint8_t*>(a.data());
}

template <typename T>
void forward(const py::array& x, py::array& y, py::array& active) {
  const int64_t n = static_cast<int64_t>(x.size());
  check_size(y, n, "y");
  mask_in(active, n);
  if (!active.writeable()) throw py::value_error("active: output array is read-only");
  const T* xp = in_ptr<T>(x, "x");
  T* yp = out_ptr<T>(y, "y");
  auto* ap = static_cast<uint8_t*>(active.mutable_data());
  KernelCall call;
  cpu::relu_forward<T>(xp, yp, ap, n);
}

template <typename T>
void backward(const py::array& dy, const py::array& active, py::array& dx) {
  const int64_t n = static_cast<int64_t>(dy.size());
  check_size(dx, n, "dx");
  const uint8_t* ap = mask_in(active, n);
  const T* dyp = in_ptr<T>(dy, "dy");
  T* dxp = out_ptr<T>(dx, "dx");
  KernelCall call;
  cpu::relu_backward<T>(dyp, ap, dxp, n);
}

// Every binding dispatches float / double like this: two lines, not worth a helper's indirection.
void register_relu(py::module_& m) {
  m.def(
      "relu_forward",
      [](py::array x, py::array y, py::array active) {
        if (float_dtype_of(x, "x") == DType::Float32)
          forward<float>(x, y, active);
        else
          forward<double>(x, y, active);
      },
      "y = max(x, 0) and the uint8 mask of active units.", py::arg("x"), py::arg("y"), py::arg("active"));
  m.def(
      "relu_backward",
      [](py::array dy, py::array active, py::array dx) {
        if (float_dtype_of(dy, "dy") == DType::Float32)
          backward<float>(dy, active, dx);
        else
          backward<double>(dy, active, dx);
      },
      "dx = dy where active, else 0.", py::arg("dy"), py::arg("active"), py::arg("dx"));
}

DK_REGISTER_BINDINGS(register_relu);

}  // namespace
}  // namespace dk::bind
