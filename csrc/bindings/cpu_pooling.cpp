// Bindings for max/avg pooling on the CPU: a params dict (bindings/pool_fields.h) and arrays in,
// kernel runs without the GIL.
#include "bindings/cpu_arrays.h"
#include "bindings/pool_fields.h"
#include "bindings/registry.h"
#include "cpu/pooling/pooling.h"

namespace dk::bind {
namespace {

// The four marshalling bodies share a shape (sizes, pointers, GIL, kernel); each names its own arrays.
template <typename T>
void max_fwd(const Pool2dParams& p, const py::array& x, py::array& y, py::array& idx) {
  check_size(x, p.planes() * p.in_plane(), "x");
  check_size(y, p.planes() * p.out_plane(), "y");
  check_size(idx, p.planes() * p.out_plane(), "indices");
  const T* xp = in_ptr<T>(x, "x");
  T* yp = out_ptr<T>(y, "y");
  int64_t* ip = out_ptr<int64_t>(idx, "indices");
  KernelCall call;
  cpu::max_pool2d_forward<T>(p, xp, yp, ip);
}

template <typename T>
void max_bwd(const Pool2dParams& p, const py::array& dy, const py::array& idx, py::array& dx) {
  check_size(dy, p.planes() * p.out_plane(), "dy");
  check_size(idx, p.planes() * p.out_plane(), "indices");
  check_size(dx, p.planes() * p.in_plane(), "dx");
  const T* dyp = in_ptr<T>(dy, "dy");
  const int64_t* ip = in_ptr<int64_t>(idx, "indices");
  T* dxp = out_ptr<T>(dx, "dx");
  KernelCall call;
  cpu::max_pool2d_backward<T>(p, dyp, ip, dxp);
}

template <typename T>
void avg_fwd(const Pool2dParams& p, const py::array& x, py::array& y) {
  check_size(x, p.planes() * p.in_plane(), "x");
  check_size(y, p.planes() * p.out_plane(), "y");
  const T* xp = in_ptr<T>(x, "x");
  T* yp = out_ptr<T>(y, "y");
  KernelCall call;
  cpu::avg_pool2d_forward<T>(p, xp, yp);
}

template <typename T>
void avg_bwd(const Pool2dParams& p, const py::array& dy, py::array& dx) {
  check_size(dy, p.planes() * p.out_plane(), "dy");
  check_size(dx, p.planes() * p.in_plane(), "dx");
  const T* dyp = in_ptr<T>(dy, "dy");
  T* dxp = out_ptr<T>(dx, "dx");
  KernelCall call;
  cpu::avg_pool2d_backward<T>(p, dyp, dxp);
}

void register_pooling(py::module_& m) {
  m.def(
      "max_pool2d_forward",
      [](py::dict params, py::array x, py::array y, py::array indices) {
        auto p = pool_params(params);
        if (float_dtype_of(x, "x") == DType::Float32)
          max_fwd<float>(p, x, y, indices);
        else
          max_fwd<double>(p, x, y, indices);
      },
      "Max pooling into y and the int64 argmax indices (flat positions in each input plane).", py::arg("params"),
      py::arg("x"), py::arg("y"), py::arg("indices"));
  m.def(
      "max_pool2d_backward",
      [](py::dict params, py::array dy, py::array indices, py::array dx) {
        auto p = pool_params(params);
        if (float_dtype_of(dy, "dy") == DType::Float32)
          max_bwd<float>(p, dy, indices, dx);
        else
          max_bwd<double>(p, dy, indices, dx);
      },
      "dx (all written): each dy element added at its forward argmax.", py::arg("params"), py::arg("dy"),
      py::arg("indices"), py::arg("dx"));
  m.def(
      "avg_pool2d_forward",
      [](py::dict params, py::array x, py::array y) {
        auto p = pool_params(params);
        if (float_dtype_of(x, "x") == DType::Float32)
          avg_fwd<float>(p, x, y);
        else
          avg_fwd<double>(p, x, y);
      },
      "Average pooling into y (divisor: params' divisor, or the window clipped as count_pad says).", py::arg("params"),
      py::arg("x"), py::arg("y"));
  m.def(
      "avg_pool2d_backward",
      [](py::dict params, py::array dy, py::array dx) {
        auto p = pool_params(params);
        if (float_dtype_of(dy, "dy") == DType::Float32)
          avg_bwd<float>(p, dy, dx);
        else
          avg_bwd<double>(p, dy, dx);
      },
      "dx (all written): each dy element spread over its window, divided as in the forward.", py::arg("params"),
      py::arg("dy"), py::arg("dx"));
}

DK_REGISTER_BINDINGS(register_pooling);

}  // namespace
}  // namespace dk::bind
