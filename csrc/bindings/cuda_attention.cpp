// Bindings for scaled dot-product attention on the GPU: a params dict (bindings/attention_fields.h),
// a dtype code, device pointers and a stream in; launch without the GIL. Without a mask (has_mask 0),
// mask and mask_off are None. Backward workspace: drow (BH*Lq accumulator-typed) and dq_acc
// (BH*Lq*D float32 for float16 data with atomic dQ accumulation, else None); the backward's params
// also carry `deterministic` (1: dQ by a separate pass, no atomics).
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/attention_fields.h"
#include "bindings/cuda_pointers.h"
#include "bindings/registry.h"
#include "cuda/attention/attention.h"

namespace dk::bind {
namespace {

namespace py = pybind11;

AttentionParams checked_params(const py::dict& d, const OptionalPtr& mask, const OptionalPtr& mask_off) {
  const AttentionParams p = attention_params(d);
  if (mask.has_value() != mask_off.has_value() || mask.has_value() != (p.has_mask != 0))
    throw py::value_error("attention: mask and mask_off must both be given exactly when params has_mask is 1");
  return p;
}

bool deterministic(const py::dict& d) {
  static const FieldNames names{"deterministic"};
  int64_t det = 0;
  int64_t* fields[] = {&det};
  read_fields(d, names, fields, "attention params");
  return det != 0;
}

void register_attention(py::module_& m) {
  m.def(
      "attention_forward",
      [](py::dict params, int dtype, uintptr_t q, uintptr_t k, uintptr_t v, OptionalPtr mask, OptionalPtr mask_off,
         uintptr_t out, uintptr_t lse, uintptr_t stream) {
        const AttentionParams p = checked_params(params, mask, mask_off);
        py::gil_scoped_release nogil;
        cuda::attention_forward(p, static_cast<DType>(dtype), device_ptr<const void>(q), device_ptr<const void>(k),
                                device_ptr<const void>(v), device_ptr<const void>(mask),
                                device_ptr<const int64_t>(mask_off), device_ptr<void>(out), device_ptr<void>(lse),
                                stream);
      },
      "Scaled dot-product attention forward into out and lse (log-sum-exp per query row).", py::arg("params"),
      py::arg("dtype"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"), py::arg("mask_off"), py::arg("out"),
      py::arg("lse"), py::arg("stream"));
  m.def(
      "attention_backward",
      [](py::dict params, int dtype, uintptr_t q, uintptr_t k, uintptr_t v, OptionalPtr mask, OptionalPtr mask_off,
         uintptr_t out, uintptr_t lse, uintptr_t dout, uintptr_t dq, uintptr_t dk, uintptr_t dv, uintptr_t drow,
         OptionalPtr dq_acc, uintptr_t stream) {
        const AttentionParams p = checked_params(params, mask, mask_off);
        const bool det = deterministic(params);
        py::gil_scoped_release nogil;
        cuda::attention_backward(p, static_cast<DType>(dtype), device_ptr<const void>(q), device_ptr<const void>(k),
                                 device_ptr<const void>(v), device_ptr<const void>(mask),
                                 device_ptr<const int64_t>(mask_off), device_ptr<const void>(out),
                                 device_ptr<const void>(lse), device_ptr<const void>(dout), device_ptr<void>(dq),
                                 device_ptr<void>(dk), device_ptr<void>(dv), device_ptr<void>(drow),
                                 device_ptr<void>(dq_acc), det, stream);
      },
      "Attention backward: dq, dk, dv (all written) from the forward's out and lse; drow and dq_acc are workspace.",
      py::arg("params"), py::arg("dtype"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"),
      py::arg("mask_off"), py::arg("out"), py::arg("lse"), py::arg("dout"), py::arg("dq"), py::arg("dk"), py::arg("dv"),
      py::arg("drow"), py::arg("dq_acc"), py::arg("stream"));
}

DK_REGISTER_BINDINGS(register_attention);

}  // namespace
}  // namespace dk::bind
