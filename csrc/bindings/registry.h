#pragma once
// Each binding file registers its functions with DK_REGISTER_BINDINGS(fn); the module file
// (cpu_module.cpp / cuda_module.cpp) calls every registered fn. Adding an op family adds one
// file and touches no shared list. The registry is per shared object (hidden visibility).
#include <pybind11/pybind11.h>

#include <vector>

namespace dk::bind {

using Registrar = void (*)(pybind11::module_&);

inline std::vector<Registrar>& registry() {
  static std::vector<Registrar> fns;
  return fns;
}

struct AutoRegister {
  explicit AutoRegister(Registrar fn) { registry().push_back(fn); }
};

}  // namespace dk::bind

#define DK_REGISTER_BINDINGS(fn) static ::dk::bind::AutoRegister dk_auto_register_##fn(fn)
