// The SIMD layer (cpu/common/simd.h) as the pooling kernels name it: included by pooling_impl.h
// inside its per-ISA namespace (DK_POOL_NS, a namespace inside DK_ISA_NAMESPACE).
#pragma once
#ifndef DK_POOL_NS
#error "include pooling_vec.h through pooling_impl.h"
#endif

#include "cpu/common/simd.h"

namespace dk::cpu::DK_POOL_NS {

using simd::Even;
using simd::EvenOfShifted;
using simd::kVecBytes;
using simd::load_strided;
using simd::mask_for;
using simd::Odd;
using simd::permute2;
using simd::ZipHi;
using simd::ZipLo;

}  // namespace dk::cpu::DK_POOL_NS
