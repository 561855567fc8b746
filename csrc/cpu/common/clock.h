#pragma once
// Monotonic nanoseconds, for the thread-team rules (contention.cpp, warm_team.cpp). Only those
// portable files include it: no per-ISA object gets a copy (tools/check_isa_objects.sh).
#include <chrono>
#include <cstdint>

namespace dk::cpu {

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace dk::cpu
