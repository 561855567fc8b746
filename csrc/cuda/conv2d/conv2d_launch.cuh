#pragma once
// The conv2d entry points declared in conv2d.h: pick the element type and the math (exact, TF32,
// float16 tensor cores) once and call the typed launchers of conv2d_gemm.cuh (or of conv2d_depthwise.cuh
// for depthwise calls, whatever the math: those are exact). Included by conv2d.cu only.
#include "cuda/conv2d/conv2d_depthwise.cuh"
#include "cuda/conv2d/conv2d_gemm.cuh"

namespace dk::cuda {

#define DK_TAG_T(tag) std::remove_pointer_t<decltype(tag)>

void conv2d_forward(const Conv2dParams& p, DType dt, bool tf32, const void* x, const void* w, const void* b, void* y,
                    uintptr_t stream) {
  conv::with_math(dt, tf32, "conv2d_forward", [&](auto* t, auto* m) {
    using T = DK_TAG_T(t);
    using Math = DK_TAG_T(m);
    if (p.is_depthwise())
      conv::depthwise_forward<T>(p, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b),
                                 static_cast<T*>(y), as_stream(stream));
    else
      conv::forward<Math, T>(p, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b),
                             static_cast<T*>(y), as_stream(stream));
  });
}

int64_t conv2d_backward_workspace(const Conv2dParams& p, DType dt, bool tf32) {
  int64_t n = 0;
  conv::with_math(dt, tf32, "conv2d_backward", [&](auto*, auto* m) {
    using Math = DK_TAG_T(m);
    const int splits = p.is_depthwise() ? 1 : conv::wgrad_splits<Math>(p);
    n = splits > 1 ? splits * p.K * p.crs() : 0;  // G groups of splits x K/G x crs
  });
  return n;
}

void conv2d_backward(const Conv2dParams& p, DType dt, bool tf32, const void* x, const void* w, const void* dy, void* dx,
                     void* dw, void* db, void* ws, uintptr_t stream) {
  conv::with_math(dt, tf32, "conv2d_backward", [&](auto* t, auto* m) {
    using T = DK_TAG_T(t);
    using Math = DK_TAG_T(m);
    const cudaStream_t s = as_stream(stream);
    const T* dyp = static_cast<const T*>(dy);
    if (p.is_depthwise()) {
      if (dx != nullptr) conv::depthwise_dgrad<T>(p, static_cast<const T*>(w), dyp, static_cast<T*>(dx), s);
      if (dw != nullptr) conv::depthwise_wgrad<T>(p, static_cast<const T*>(x), dyp, static_cast<T*>(dw), s);
      if (db != nullptr) conv::bias_grad<T>(p, dyp, static_cast<T*>(db), s);
      return;
    }
    if (dx != nullptr) conv::dgrad<Math, T>(p, static_cast<const T*>(w), dyp, static_cast<T*>(dx), s);
    if (dw != nullptr)
      conv::wgrad<Math, T>(p, static_cast<const T*>(x), dyp, static_cast<T*>(dw), static_cast<typename Math::Acc*>(ws),
                           s);
    if (db != nullptr) conv::bias_grad<T>(p, dyp, static_cast<T*>(db), s);
  });
}

#undef DK_TAG_T

}  // namespace dk::cuda
