// deepkern._cpu: the OpenMP kernels. Op families register themselves (registry.h).
#include <pybind11/pybind11.h>

#include "bindings/registry.h"
#include "cpu/common/contention.h"
#include "cpu/common/cpu_features.h"
#include "cpu/common/parallel.h"
#include "cpu/common/warm_team.h"

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "deepkern CPU kernels (C++17, OpenMP)";
  m.def("set_num_threads", &dk::cpu::set_num_threads, "Threads the CPU kernels use.", pybind11::arg("n"));
  m.def("get_num_threads", &dk::cpu::num_threads, "Threads the CPU kernels use.");
  m.def(
      "_threads_for", [](double flops, double bytes) { return dk::cpu::threads_for({flops, bytes}); },
      "Threads a kernel of this much work would use (tests).", pybind11::arg("flops"), pybind11::arg("bytes"));
  m.def("_parallel_min_us", &dk::cpu::parallel_min_us, "One core's microseconds below which kernels stay serial.");
  m.def(
      "_set_contention",
      [](const std::string& mode) {
        using dk::cpu::ContentionMode;
        if (mode == "auto") return dk::cpu::set_contention_mode(ContentionMode::Auto);
        if (mode == "off") return dk::cpu::set_contention_mode(ContentionMode::Off);
        if (mode == "force") return dk::cpu::set_contention_mode(ContentionMode::Force);
        throw pybind11::value_error("mode must be 'auto', 'off' or 'force', got '" + mode + "'");
      },
      "How parallel regions react to an oversubscribed machine (DEEPKERN_CONTENTION).", pybind11::arg("mode"));
  m.def(
      "_contention",
      [] {
        const auto s = dk::cpu::contention_state();
        static const char* names[] = {"auto", "off", "force"};
        pybind11::dict d;
        d["mode"] = names[static_cast<int>(s.mode)];
        d["available"] = s.available;
        d["busy"] = s.busy;
        d["share"] = s.share;
        d["windows"] = s.windows;
        d["busy_windows"] = s.busy_windows;
        return d;
      },
      "The calling thread's view of the machine: mode, busy, last waiting share (tests, benchmarks).");
  m.def(
      "_warm_counts",
      [] {
        const auto c = dk::cpu::warm::counts();
        pybind11::dict d;
        d["modest_calls"] = c.modest_calls;
        d["with_team"] = c.with_team;
        return d;
      },
      "The calling thread's modest calls (between the warm and the parallel thresholds) and how many ran a team.");
  m.def("_warm_min_us", &dk::cpu::warm_min_us, "One core's microseconds from which a call may run a team when warm.");
  m.def("_team", &dk::cpu::team, "The team a region of `logical` threads would start now (tests).",
        pybind11::arg("logical"));
  m.def(
      "isa", [] { return std::string(dk::cpu::isa_name(dk::cpu::best_isa())); },
      "The SIMD kernel family chosen for this CPU at run time.");
  for (auto fn : dk::bind::registry()) fn(m);
}
