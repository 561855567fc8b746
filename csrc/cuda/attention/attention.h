#pragma once
// CUDA attention launchers (plain C++ interface: the bindings are compiled without nvcc).
// Pointers are device pointers; stream is a cudaStream_t passed as an integer. Shapes and the
// mask layout: common/attention_params.h. lse and drow are float for float16 data (the type the
// kernels accumulate in), else the data type. Nothing here allocates: the caller passes workspace.
#include <cstdint>

#include "common/attention_params.h"
#include "common/dtype.h"

namespace dk::cuda {

// out = softmax(q k^T * scale + mask) v; lse = the log-sum-exp of each score row (+inf for a row
// with nothing to attend to, whose out is 0). mask / moff are null without a mask.
void attention_forward(const AttentionParams& p, DType dt, const void* q, const void* k, const void* v,
                       const void* mask, const int64_t* moff, void* out, void* lse, uintptr_t stream);

// dq, dk, dv (all written). drow: BH*Lq accumulator-typed workspace. dq_acc: BH*Lq*D float
// workspace for float16 data when dQ is accumulated with atomics (null otherwise).
// deterministic: dQ by a separate pass (no atomics, bitwise reproducible) instead of atomics.
void attention_backward(const AttentionParams& p, DType dt, const void* q, const void* k, const void* v,
                        const void* mask, const int64_t* moff, const void* out, const void* lse, const void* dout,
                        void* dq, void* dk, void* dv, void* drow, void* dq_acc, bool deterministic, uintptr_t stream);

}  // namespace dk::cuda
