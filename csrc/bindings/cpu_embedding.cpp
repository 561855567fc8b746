// Internal binding of the embedding's gradient kernel (not public API):
//   _cpu.scatter_add_rows(g, idx, rows)   g[idx[i]] += rows[i], i in order; g (V, dim), rows (n, dim)
#include "bindings/cpu_arrays.h"
#include "bindings/registry.h"
#include "cpu/embedding/scatter_add.h"

namespace dk::bind {
namespace {

template <typename T>
void scatter(py::array& g, const py::array& idx, const py::array& rows) {
  if (g.ndim() != 2 || rows.ndim() != 2) throw py::value_error("g, rows: expected 2-d arrays");
  const int64_t V = static_cast<int64_t>(g.shape(0)), dim = static_cast<int64_t>(g.shape(1));
  const int64_t n = static_cast<int64_t>(rows.shape(0));
  if (rows.shape(1) != dim) throw py::value_error("rows: expected " + std::to_string(dim) + " columns");
  if (!idx.dtype().is(py::dtype::of<int64_t>())) throw py::type_error("idx: expected an int64 array");
  check_contiguous(idx, "idx");
  check_size(idx, n, "idx");
  const auto* ip = static_cast<const int64_t*>(idx.data());
  for (int64_t i = 0; i < n; ++i)  // the caller checked them; this keeps a wrong call from writing out of bounds
    if (ip[i] < 0 || ip[i] >= V) throw py::value_error("idx: expected row indices in [0, " + std::to_string(V) + ")");
  T* gp = out_ptr<T>(g, "g");
  const T* rp = in_ptr<T>(rows, "rows");
  KernelCall call;
  cpu::scatter_add_rows<T>(gp, ip, rp, n, dim);
}

void register_embedding(py::module_& m) {
  m.def(
      "scatter_add_rows",
      [](py::array g, py::array idx, py::array rows) {
        if (float_dtype_of(g, "g") == DType::Float32)
          scatter<float>(g, idx, rows);
        else
          scatter<double>(g, idx, rows);
      },
      "g[idx[i]] += rows[i] for i in order (repeated indices add up).", py::arg("g"), py::arg("idx"), py::arg("rows"));
}

DK_REGISTER_BINDINGS(register_embedding);

}  // namespace
}  // namespace dk::bind
