// Internal binding of the fused loss kernels for nn's losses (not public API):
//   _cpu.softmax_xent(z, labels, probs, grad, n_total) -> summed loss (float), probs and grad written
#include "bindings/cpu_arrays.h"
#include "bindings/registry.h"
#include "cpu/loss/softmax_xent.h"

namespace dk::bind {
namespace {

template <typename T>
double xent(const py::array& z, const py::array& labels, py::array& probs, py::array& grad, int64_t n_total) {
  if (z.ndim() != 2) throw py::value_error("z: expected a 2-d (rows, classes) array");
  const int64_t n = static_cast<int64_t>(z.shape(0)), C = static_cast<int64_t>(z.shape(1));
  const T* zp = in_ptr<T>(z, "z");
  if (!labels.dtype().is(py::dtype::of<int64_t>())) throw py::type_error("labels: expected an int64 array");
  check_contiguous(labels, "labels");
  check_size(labels, n, "labels");
  const auto* lp = static_cast<const int64_t*>(labels.data());
  for (int64_t r = 0; r < n; ++r)  // the caller checked them; this keeps a wrong call from writing out of bounds
    if (lp[r] < 0 || lp[r] >= C)
      throw py::value_error("labels: expected class labels in [0, " + std::to_string(C) + ")");
  T* pp = sized_out<T>(probs, n * C, "probs");
  T* gp = sized_out<T>(grad, n * C, "grad");
  if (n_total < 1) throw py::value_error("n_total: expected at least 1");
  KernelCall call;
  return cpu::softmax_xent<T>(zp, lp, n, C, n_total, pp, gp);
}

void register_loss(py::module_& m) {
  m.def(
      "softmax_xent",
      [](py::array z, py::array labels, py::array probs, py::array grad, int64_t n_total) {
        if (float_dtype_of(z, "z") == DType::Float32) return xent<float>(z, labels, probs, grad, n_total);
        return xent<double>(z, labels, probs, grad, n_total);
      },
      "Softmax cross-entropy against labels: probs and grad written, the summed loss returned.", py::arg("z"),
      py::arg("labels"), py::arg("probs"), py::arg("grad"), py::arg("n_total"));
}

DK_REGISTER_BINDINGS(register_loss);

}  // namespace
}  // namespace dk::bind
