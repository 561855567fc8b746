#pragma once
// The thread count every CPU kernel uses (dk.set_num_threads). A process-wide value
// rather than omp_set_num_threads, which only affects the calling thread.
#include <omp.h>

namespace dk::cpu {

int num_threads();
void set_num_threads(int n);

}  // namespace dk::cpu
