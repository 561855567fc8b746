// The process-wide thread count of the CPU kernels and the small-work threshold (parallel.h).
#include "cpu/common/parallel.h"

#include <atomic>
#include <cstdlib>

namespace dk::cpu {

namespace {
std::atomic<int>& thread_setting() {
  static std::atomic<int> n{omp_get_max_threads()};
  return n;
}

constexpr double kDefaultParallelMinUs = 100.0;

double read_parallel_min_us() {
  const char* s = std::getenv("DEEPKERN_PARALLEL_MIN_US");
  if (s == nullptr || *s == '\0') return kDefaultParallelMinUs;
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  return (end != s && v >= 0.0) ? v : kDefaultParallelMinUs;
}
}  // namespace

int num_threads() { return thread_setting().load(std::memory_order_relaxed); }

void set_num_threads(int n) { thread_setting().store(n < 1 ? 1 : n, std::memory_order_relaxed); }

double parallel_min_us() {
  static const double v = read_parallel_min_us();
  return v;
}

int threads_for(Work w) {
  const double us = w.flops / kFlopsPerUs + w.bytes / kBytesPerUs;
  return us >= parallel_min_us() ? num_threads() : 1;
}

int threads_for_flops(double flops) { return threads_for(Work::of_flops(flops)); }
int threads_for_bytes(double bytes) { return threads_for(Work::of_bytes(bytes)); }
bool worth_threads(int64_t elements) { return threads_for_bytes(4.0 * double(elements)) > 1; }

}  // namespace dk::cpu
