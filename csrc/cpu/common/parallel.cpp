// The process-wide thread count of the CPU kernels (parallel.h).
#include "cpu/common/parallel.h"

#include <atomic>

namespace dk::cpu {

namespace {
std::atomic<int>& thread_setting() {
  static std::atomic<int> n{omp_get_max_threads()};
  return n;
}
}  // namespace

int num_threads() { return thread_setting().load(std::memory_order_relaxed); }

void set_num_threads(int n) { thread_setting().store(n < 1 ? 1 : n, std::memory_order_relaxed); }

}  // namespace dk::cpu
