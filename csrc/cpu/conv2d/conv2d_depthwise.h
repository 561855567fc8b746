#pragma once
// Depthwise convolution (p.is_depthwise(): groups == C, K = m*C) on the CPU, forward and backward
// (T = float or double); conv2d.cpp sends those calls here. dx or dw may be null (not wanted).
// The backward sums db too where its kernel reads dy anyway (returns true then; db may be null).
#include "common/conv_params.h"

namespace dk::cpu {

template <typename T>
void conv2d_depthwise_forward(const Conv2dParams& p, const T* x, const T* w, const T* b, T* y);

template <typename T>
bool conv2d_depthwise_backward(const Conv2dParams& p, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db);

}  // namespace dk::cpu
