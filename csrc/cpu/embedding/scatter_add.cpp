// scatter_add_rows (scatter_add.h): one pass over the rows on the calling thread. A step's rows
// (batch x time, a few thousand of a few hundred values) take tens of microseconds: no region.
#include "cpu/embedding/scatter_add.h"

namespace dk::cpu {

template <typename T>
void scatter_add_rows(T* g, const int64_t* idx, const T* rows, int64_t n, int64_t dim) {
  for (int64_t i = 0; i < n; ++i) {
    T* __restrict dst = g + idx[i] * dim;
    const T* __restrict src = rows + i * dim;
    for (int64_t j = 0; j < dim; ++j) dst[j] += src[j];
  }
}

template void scatter_add_rows<float>(float*, const int64_t*, const float*, int64_t, int64_t);
template void scatter_add_rows<double>(double*, const int64_t*, const double*, int64_t, int64_t);

}  // namespace dk::cpu
