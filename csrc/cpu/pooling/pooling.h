#pragma once
// Max and average pooling over NCHW planes, forward and backward (T = float or double).
#include <cstdint>

#include "common/pool_params.h"

namespace dk::cpu {

// y[n,c,oh,ow] = max over the window (padding is -inf; NaN wins, as in PyTorch);
// idx gets the flat position ih*W+iw of the max inside its (H, W) plane.
template <typename T>
void max_pool2d_forward(const Pool2dParams& p, const T* x, T* y, int64_t* idx);

// dx = 0, then dx[plane][idx] += dy for every output: the gradient reaches only the max unit.
template <typename T>
void max_pool2d_backward(const Pool2dParams& p, const T* dy, const int64_t* idx, T* dx);

// y = sum over the window / (kh*kw); padded zeros count (count_include_pad=True).
template <typename T>
void avg_pool2d_forward(const Pool2dParams& p, const T* x, T* y);

template <typename T>
void avg_pool2d_backward(const Pool2dParams& p, const T* dy, T* dx);

}  // namespace dk::cpu
