// Bindings for max/avg pooling on the CPU: arrays in, kernel runs without the GIL.
#include "bindings/cpu_arrays.h"
#include "bindings/registry.h"
#include "cpu/pooling/pooling.h"

namespace dk::bind {
namespace {

// Built by functional/pooling.py's _pool_params, one key per Pool2dParams field.
Pool2dParams pool_params(const py::dict& d) {
  static const FieldNames names{"N",  "C",  "H",  "W",  "Ho", "Wo", "kh",      "kw",
                                "sh", "sw", "ph", "pw", "dh", "dw", "divisor", "count_pad"};
  Pool2dParams p{};
  int64_t count_pad = 1;
  int64_t* fields[] = {&p.N,  &p.C,  &p.H,  &p.W,  &p.Ho, &p.Wo, &p.kh,      &p.kw,
                       &p.sh, &p.sw, &p.ph, &p.pw, &p.dh, &p.dw, &p.divisor, &count_pad};
  read_fields(d, names, fields, "pool params");
  p.count_pad = count_pad != 0;
  return p;
}

template <typename T>
void max_fwd(const Pool2dParams& p, const py::array& x, py::array& y, py::array& idx) {
  check_size(x, p.planes() * p.in_plane(), "x");
  check_size(y, p.planes() * p.out_plane(), "y");
  check_size(idx, p.planes() * p.out_plane(), "indices");
  const T* xp = in_ptr<T>(x, "x");
  T* yp = out_ptr<T>(y, "y");
  int64_t* ip = out_ptr<int64_t>(idx, "indices");
  py::gil_scoped_release nogil;
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
  py::gil_scoped_release nogil;
  cpu::max_pool2d_backward<T>(p, dyp, ip, dxp);
}

template <typename T>
void avg_fwd(const Pool2dParams& p, const py::array& x, py::array& y) {
  check_size(x, p.planes() * p.in_plane(), "x");
  check_size(y, p.planes() * p.out_plane(), "y");
  const T* xp = in_ptr<T>(x, "x");
  T* yp = out_ptr<T>(y, "y");
  py::gil_scoped_release nogil;
  cpu::avg_pool2d_forward<T>(p, xp, yp);
}

template <typename T>
void avg_bwd(const Pool2dParams& p, const py::array& dy, py::array& dx) {
  check_size(dy, p.planes() * p.out_plane(), "dy");
  check_size(dx, p.planes() * p.in_plane(), "dx");
  const T* dyp = in_ptr<T>(dy, "dy");
  T* dxp = out_ptr<T>(dx, "dx");
  py::gil_scoped_release nogil;
  cpu::avg_pool2d_backward<T>(p, dyp, dxp);
}

void register_pooling(py::module_& m) {
  m.def("max_pool2d_forward", [](py::dict params, py::array x, py::array y, py::array idx) {
    auto p = pool_params(params);
    if (float_dtype_of(x, "x") == DType::Float32)
      max_fwd<float>(p, x, y, idx);
    else
      max_fwd<double>(p, x, y, idx);
  });
  m.def("max_pool2d_backward", [](py::dict params, py::array dy, py::array idx, py::array dx) {
    auto p = pool_params(params);
    if (float_dtype_of(dy, "dy") == DType::Float32)
      max_bwd<float>(p, dy, idx, dx);
    else
      max_bwd<double>(p, dy, idx, dx);
  });
  m.def("avg_pool2d_forward", [](py::dict params, py::array x, py::array y) {
    auto p = pool_params(params);
    if (float_dtype_of(x, "x") == DType::Float32)
      avg_fwd<float>(p, x, y);
    else
      avg_fwd<double>(p, x, y);
  });
  m.def("avg_pool2d_backward", [](py::dict params, py::array dy, py::array dx) {
    auto p = pool_params(params);
    if (float_dtype_of(dy, "dy") == DType::Float32)
      avg_bwd<float>(p, dy, dx);
    else
      avg_bwd<double>(p, dy, dx);
  });
}

DK_REGISTER_BINDINGS(register_pooling);

}  // namespace
}  // namespace dk::bind
