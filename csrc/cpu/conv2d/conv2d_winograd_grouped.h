#pragma once
// Winograd F(4x4, 3x3) for grouped stride-1 3x3 convolutions (1 < G < C, not depthwise): the
// transforms of conv2d_winograd.h with each group's GEMMs [tiles x C/G] x [C/G x K/G] run on its own
// channels read in place (no gathered copies), all groups in one parallel loop. Also dx of such a
// convolution, as the grouped convolution of dy with each group's flipped, transposed weights. dw is
// the ungrouped weight gradient's (conv2d_winograd.h), groups as its outer dimension.
#include <cstdint>

#include "common/conv_params.h"

namespace dk::cpu {

// Whether the grouped Winograd runs this convolution (x and w finite besides; for dx: call it
// on winograd_grouped_dx_params(p), with w and dy finite).
bool winograd_grouped_pays(const Conv2dParams& p, int64_t elem_bytes);

// y = conv(x, w) + b (b may be null) for a grouped 3x3, stride 1, dilation 1 convolution.
template <typename T>
void conv2d_forward_winograd_grouped(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y);

// The transposed convolution that gives dx (stride 1, padding <= 2 on both axes; G kept), or
// params with G = 0 when dx is not one.
Conv2dParams winograd_grouped_dx_params(const Conv2dParams& p);

// Whether dw of this grouped convolution runs as Winograd F(3x3, 4x4) (conv2d_weight_grad_winograd;
// x and dy finite besides): where the forward does, and C/G rounded to 16 fills one GEMM panel
// (GemmKernel::nr or nr/2), the shapes it was measured on (conv.md, "Grouped 3x3").
template <typename T>
bool winograd_grouped_dw_pays(const Conv2dParams& p);

// dx of a convolution whose winograd_grouped_dx_params pays.
template <typename T>
void conv2d_input_grad_winograd_grouped(const Conv2dParams& p, const T* w, const T* dy, T* dx);

}  // namespace dk::cpu
