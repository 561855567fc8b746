// deepkern._cpu: the OpenMP kernels. Op families register themselves (registry.h).
#include <pybind11/pybind11.h>

#include "bindings/registry.h"
#include "cpu/common/cpu_features.h"
#include "cpu/common/parallel.h"

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "deepkern CPU kernels (C++17, OpenMP)";
  m.def("set_num_threads", &dk::cpu::set_num_threads, "Threads the CPU kernels use.", pybind11::arg("n"));
  m.def("get_num_threads", &dk::cpu::num_threads, "Threads the CPU kernels use.");
  m.def(
      "_threads_for", [](double flops, double bytes) { return dk::cpu::threads_for({flops, bytes}); },
      "Threads a kernel of this much work would use (tests).", pybind11::arg("flops"), pybind11::arg("bytes"));
  m.def("_parallel_min_us", &dk::cpu::parallel_min_us, "One core's microseconds below which kernels stay serial.");
  m.def(
      "isa", [] { return std::string(dk::cpu::isa_name(dk::cpu::best_isa())); },
      "The SIMD kernel family chosen for this CPU at run time.");
  for (auto fn : dk::bind::registry()) fn(m);
}
