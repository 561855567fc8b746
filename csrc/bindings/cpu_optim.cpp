// Internal binding of the fused optimizer steps (not public API):
//   _cpu.adam_update(w, g, m, v, vmax, b1, b2, lr_bc1, sqrt_bc2, eps)   in place on w, m, v (and vmax)
#include "bindings/cpu_arrays.h"
#include "bindings/registry.h"
#include "cpu/optim/adam.h"

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
}

DK_REGISTER_BINDINGS(register_optim);

}  // namespace
}  // namespace dk::bind
