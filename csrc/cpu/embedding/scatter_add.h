#pragma once
// The embedding's weight gradient: g[idx[i], :] += rows[i, :] for i = 0, 1, ... in that order
// (repeated indices add up left to right, as numpy's np.add.at does). Indices checked by the caller.
#include <cstdint>

namespace dk::cpu {

template <typename T>
void scatter_add_rows(T* g, const int64_t* idx, const T* rows, int64_t n, int64_t dim);

}  // namespace dk::cpu
