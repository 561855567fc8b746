// The process-wide thread count of the CPU kernels and the small-work threshold (parallel.h).
#include "cpu/common/parallel.h"

#include <atomic>
#include <cstdlib>

#include "cpu/common/warm_team.h"

namespace dk::cpu {

namespace {
std::atomic<int>& thread_setting() {
  static std::atomic<int> n{omp_get_max_threads()};
  return n;
}

constexpr double kDefaultParallelMinUs = 100.0;
constexpr double kDefaultWarmMinUs = 25.0;

double read_microseconds(const char* name, double fallback) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return fallback;
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  return (end != s && v >= 0.0) ? v : fallback;
}
}  // namespace

int num_threads() { return thread_setting().load(std::memory_order_relaxed); }

void set_num_threads(int n) { thread_setting().store(n < 1 ? 1 : n, std::memory_order_relaxed); }

double parallel_min_us() {
  static const double v = read_microseconds("DEEPKERN_PARALLEL_MIN_US", kDefaultParallelMinUs);
  return v;
}

double warm_min_us() {
  static const double v = read_microseconds("DEEPKERN_PARALLEL_WARM_US", kDefaultWarmMinUs);
  return v;
}

int threads_for(Work w) {
  const double us = w.flops / kFlopsPerUs + w.bytes / kBytesPerUs;
  const bool threaded = us >= parallel_min_us() || us >= warm_min_us();
  warm::mark_modest_call(threaded && us < parallel_min_us());
  return threaded ? num_threads() : 1;
}

int threads_for_flops(double flops) { return threads_for(Work::of_flops(flops)); }
int threads_for_bytes(double bytes) { return threads_for(Work::of_bytes(bytes)); }
bool worth_threads(int64_t elements) { return threads_for_bytes(4.0 * double(elements)) > 1; }

}  // namespace dk::cpu
