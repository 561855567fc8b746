#pragma once
// Stride-1 convolution as a "shifted GEMM": with the input zero-padded to Hp x Wp and output
// positions numbered q = oh*Wp + ow, row (c, i, j) of the im2col matrix is the padded input
// read from offset c*Hp*Wp + i*dh*Wp + j*dw onwards. The micro-kernel reads those rows in place
// (GemmKernel::fn_shifted), so neither an im2col matrix nor a packed B panel is ever built.
// Columns with ow >= Wo are computed and dropped (Wp/Wo - 1 extra work, e.g. 6% for 3x3 on 32x32).
#include "common/conv_params.h"

namespace dk::cpu {

inline bool shifted_applies(const Conv2dParams& p) { return p.sh == 1 && p.sw == 1 && !p.is_pointwise(); }

// y = conv(x, w) + b (b may be null) for p with stride 1.
template <typename T>
void conv2d_forward_shifted(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y);

}  // namespace dk::cpu
