// Bindings for conv2d on the CPU: arrays in, kernel runs without the GIL.
//   conv2d_forward(params, x, w, b or None, y)
//   conv2d_backward(params, x, w, dy, dx or None, dw or None, db or None)
//   conv2d_plan(params, dtype, threads) -> {"forward", "dx", "dw"}: the lowering each pass takes
#include "bindings/conv_fields.h"
#include "bindings/cpu_arrays.h"
#include "bindings/registry.h"
#include "cpu/conv2d/conv2d.h"

#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "cpu/common/parallel.h"

namespace dk::bind {
namespace {

template <typename T>
void fwd(const Conv2dParams& p, const py::array& x, const py::array& w, const py::object& b, py::array& y) {
  check_size(x, p.N * p.C * p.in_plane(), "x");
  check_size(w, p.K * p.crs(), "w");
  check_size(y, p.N * p.K * p.out_plane(), "y");
  const T* xp = in_ptr<T>(x, "x");
  const T* wp = in_ptr<T>(w, "w");
  const T* bp = optional_in<T>(b, p.K, "b");
  T* yp = out_ptr<T>(y, "y");
  KernelCall call;
  cpu::conv2d_forward<T>(p, xp, wp, bp, yp);
}

template <typename T>
void bwd(const Conv2dParams& p, const py::array& x, const py::array& w, const py::array& dy, const py::object& dx,
         const py::object& dw, const py::object& db) {
  check_size(x, p.N * p.C * p.in_plane(), "x");
  check_size(w, p.K * p.crs(), "w");
  check_size(dy, p.N * p.K * p.out_plane(), "dy");
  const T* xp = in_ptr<T>(x, "x");
  const T* wp = in_ptr<T>(w, "w");
  const T* dyp = in_ptr<T>(dy, "dy");
  T* dxp = optional_out<T>(dx, p.N * p.C * p.in_plane(), "dx");
  T* dwp = optional_out<T>(dw, p.K * p.crs(), "dw");
  T* dbp = optional_out<T>(db, p.K, "db");
  KernelCall call;
  cpu::conv2d_backward<T>(p, xp, wp, dyp, dxp, dwp, dbp);
}

void register_conv(py::module_& m) {
  m.def(
      "conv2d_forward",
      [](py::dict params, py::array x, py::array w, py::object b, py::array y) {
        auto p = conv_params(params);
        if (float_dtype_of(x, "x") == DType::Float32)
          fwd<float>(p, x, w, b, y);
        else
          fwd<double>(p, x, w, b, y);
      },
      py::arg("params"), py::arg("x"), py::arg("w"), py::arg("b").none(true), py::arg("y"),
      "y (N, K, Ho, Wo) = conv2d(x (N, C, H, W), w (K, C/G, kh, kw)) + b (K,) or None. params: the\n"
      "Conv2dParams dict (functional/conv.py's _conv_params); arrays C-contiguous float32 or float64.");
  m.def(
      "conv2d_backward",
      [](py::dict params, py::array x, py::array w, py::array dy, py::object dx, py::object dw, py::object db) {
        auto p = conv_params(params);
        if (float_dtype_of(x, "x") == DType::Float32)
          bwd<float>(p, x, w, dy, dx, dw, db);
        else
          bwd<double>(p, x, w, dy, dx, dw, db);
      },
      py::arg("params"), py::arg("x"), py::arg("w"), py::arg("dy"), py::arg("dx").none(true), py::arg("dw").none(true),
      py::arg("db").none(true),
      "Writes dx (N, C, H, W), dw (K, C/G, kh, kw) and db (K,) of sum(y * dy), each skipped where None.");
}

void register_conv_plan(py::module_& m) {
  m.def(
      "conv2d_plan",
      [](py::dict params, const std::string& dtype, std::optional<int> threads) {
        const Conv2dParams p = conv_params(params);
        const int nt = threads ? *threads : cpu::num_threads();
        if (nt < 1) throw py::value_error("conv2d_plan: threads must be >= 1, got " + std::to_string(nt));
        cpu::Conv2dPlan r;
        if (dtype == "float32")
          r = cpu::conv2d_plan<float>(p, nt);
        else if (dtype == "float64")
          r = cpu::conv2d_plan<double>(p, nt);
        else
          throw py::value_error("conv2d_plan: dtype must be 'float32' or 'float64', got '" + dtype + "'");
        py::dict d;
        d["forward"] = r.forward;
        d["dx"] = r.dx;
        d["dw"] = r.dw;
        return d;
      },
      py::arg("params"), py::arg("dtype") = "float32", py::arg("threads") = py::none(),
      "The lowering each pass of conv2d takes for these params (finite inputs), as a dict with keys\n"
      "forward, dx, dw: 'winograd', 'shifted', 'unfolded', 'shifted_scatter' (dx), 'shifted_rows' /\n"
      "'shifted_gemm' (dw), 'im2col', 'im2col_planes', 'pointwise' or 'depthwise'. threads: the count to plan for\n"
      "(default: the current one).");
}

DK_REGISTER_BINDINGS(register_conv);
DK_REGISTER_BINDINGS(register_conv_plan);

}  // namespace
}  // namespace dk::bind
