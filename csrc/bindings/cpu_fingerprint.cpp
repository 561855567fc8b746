// Binding for the saved-array fingerprint (python/deepkern/_saved.py).
#include "bindings/cpu_arrays.h"
#include "bindings/registry.h"
#include "cpu/fingerprint/fingerprint.h"

namespace dk::bind {
namespace {

uint64_t fingerprint(const py::array& a) {
  check_contiguous(a, "a");
  const void* p = a.data();
  const int64_t nbytes = static_cast<int64_t>(a.nbytes());
  KernelCall call;
  return cpu::fingerprint(p, nbytes);
}

void register_fingerprint(py::module_& m) {
  m.def("fingerprint", &fingerprint, py::arg("a"),
        "64-bit fingerprint of a C-contiguous array's bytes (detects in-place modification).");
}

DK_REGISTER_BINDINGS(register_fingerprint);

}  // namespace
}  // namespace dk::bind
