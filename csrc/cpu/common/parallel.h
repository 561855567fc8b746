#pragma once
// The thread count every CPU kernel uses (dk.set_num_threads). A process-wide value
// rather than omp_set_num_threads, which only affects the calling thread.
#include <omp.h>

#include <cstdint>

namespace dk::cpu {

int num_threads();
void set_num_threads(int n);

// Whether memory-bound work over `elements` values (read plus written) pays for a parallel
// region: starting one costs microseconds, more when other processes hold the cores, while
// 2^15 floats take about 5 us on one core.
inline bool worth_threads(int64_t elements) { return elements >= (int64_t(1) << 15); }

}  // namespace dk::cpu
