// Internal binding of the fused optimizer steps (not public API):
//   _cpu.adam_update(w, g, m, v, vmax, b1, b2, lr_bc1, sqrt_bc2, eps)   in place on w, m, v (and vmax)
//   _cpu.sgd_update(w, g, buf, lr, momentum, dampening, weight_decay, nesterov, first)   in place on w (and buf)
#include "bindings/cpu_arrays.h"
#include "bindings/registry.h"
#include "cpu/optim/adam.h"
#include "cpu/optim/sgd.h"

namespace dk::bind {
namespace {

template <typename T>
void adam(py::array& w, const py::array& g, py::array& m, py::array& v, const py::object& vmax,
          const cpu::AdamStep& s) {
  const int64_t n = static_cast<int64_t>(w.size());
  T* wp = out_ptr<T>(w, "w");
  const T* gp = sized_in<T>(g, n, "g");
  T* mp = sized_out<T>(m, n, "m");
  T* vp = sized_out<T>(v, n, "v");
  T* vmp = optional_out<T>(vmax, n, "vmax");
  KernelCall call;
  cpu::adam_update<T>(wp, gp, mp, vp, vmp, n, s);
}

template <typename T>
void sgd(py::array& w, const py::array& g, const py::object& buf, const cpu::SgdStep& s) {
  const int64_t n = static_cast<int64_t>(w.size());
  T* wp = out_ptr<T>(w, "w");
  const T* gp = sized_in<T>(g, n, "g");
  T* bp = optional_out<T>(buf, n, "buf");
  if (s.momentum != 0.0 && bp == nullptr) throw py::value_error("sgd_update: momentum needs 'buf'");
  KernelCall call;
  cpu::sgd_update<T>(wp, gp, bp, n, s);
}

void register_optim(py::module_& m) {
  m.def(
      "adam_update",
      [](py::array w, py::array g, py::array mom, py::array v, py::object vmax, double b1, double b2, double lr_bc1,
         double sqrt_bc2, double eps) {
        const cpu::AdamStep s{b1, b2, lr_bc1, sqrt_bc2, eps};
        if (float_dtype_of(w, "w") == DType::Float32)
          adam<float>(w, g, mom, v, vmax, s);
        else
          adam<double>(w, g, mom, v, vmax, s);
      },
      "One Adam step in place, bit-identical to its numpy array form.", py::arg("w"), py::arg("g"), py::arg("m"),
      py::arg("v"), py::arg("vmax"), py::arg("b1"), py::arg("b2"), py::arg("lr_bc1"), py::arg("sqrt_bc2"),
      py::arg("eps"));
  m.def(
      "sgd_update",
      [](py::array w, py::array g, py::object buf, double lr, double momentum, double dampening, double weight_decay,
         bool nesterov, bool first) {
        const cpu::SgdStep s{lr, momentum, dampening, weight_decay, nesterov, first};
        if (float_dtype_of(w, "w") == DType::Float32)
          sgd<float>(w, g, buf, s);
        else
          sgd<double>(w, g, buf, s);
      },
      "One SGD step in place, bit-identical to its numpy array form.", py::arg("w"), py::arg("g"), py::arg("buf"),
      py::arg("lr"), py::arg("momentum"), py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"),
      py::arg("first"));
}

DK_REGISTER_BINDINGS(register_optim);

}  // namespace
}  // namespace dk::bind
