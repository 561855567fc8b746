#pragma once
// ReLU for the nn.ReLU layer, PyTorch's semantics: y = x < 0 ? 0 : x (NaN and -0.0 pass through,
// -inf gives 0); the backward gives exactly 0 where y <= 0, even where dy is inf or NaN (a select,
// not a multiply by the mask), and dy elsewhere (y > 0 or NaN), as PyTorch's threshold_backward.
#include <cstdint>

namespace dk::cpu {

// y and active (0 where y <= 0, else 1) for n elements.
template <typename T>
void relu_forward(const T* x, T* y, uint8_t* active, int64_t n);

template <typename T>
void relu_backward(const T* dy, const uint8_t* active, T* dx, int64_t n);

}  // namespace dk::cpu
