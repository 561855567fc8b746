// Bindings for scaled dot-product attention on the GPU: pointers and a stream in, launch without the GIL.
// params = (BH, Lq, Lk, D, Dv, causal, has_mask, m_rs, m_cs, scale[, deterministic]). Without a mask,
// `mask` and `mask_off` are ignored. Backward workspace: drow (BH*Lq accumulator-typed) and dq_acc
// (BH*Lq*D float32, used for float16 data with atomic dQ accumulation).
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings/registry.h"
#include "cuda/attention/attention.h"

namespace dk::bind {
namespace {

namespace py = pybind11;

AttentionParams cuda_attention_params(const py::sequence& s, size_t n) {
  if (py::len(s) != n) throw py::value_error("attention params: expected " + std::to_string(n) + " entries");
  AttentionParams p{};
  int64_t* f[] = {&p.BH, &p.Lq, &p.Lk, &p.D, &p.Dv, &p.causal, &p.has_mask, &p.m_rs, &p.m_cs};
  for (size_t i = 0; i < 9; ++i) *f[i] = s[i].cast<int64_t>();
  p.scale = s[9].cast<double>();
  return p;
}

template <typename P>
P* ptr(uintptr_t a) {
  return reinterpret_cast<P*>(a);
}

void register_attention(py::module_& m) {
  m.def("attention_forward", [](py::sequence params, int dtype, uintptr_t q, uintptr_t k, uintptr_t v, uintptr_t mask,
                                uintptr_t moff, uintptr_t out, uintptr_t lse, uintptr_t stream) {
    const AttentionParams p = cuda_attention_params(params, 10);
    const bool has_mask = p.has_mask != 0;
    py::gil_scoped_release nogil;
    cuda::attention_forward(p, static_cast<DType>(dtype), ptr<const void>(q), ptr<const void>(k), ptr<const void>(v),
                            has_mask ? ptr<const void>(mask) : nullptr, has_mask ? ptr<const int64_t>(moff) : nullptr,
                            ptr<void>(out), ptr<void>(lse), stream);
  });
  m.def("attention_backward", [](py::sequence params, int dtype, uintptr_t q, uintptr_t k, uintptr_t v, uintptr_t mask,
                                 uintptr_t moff, uintptr_t out, uintptr_t lse, uintptr_t dout, uintptr_t dq,
                                 uintptr_t dk, uintptr_t dv, uintptr_t drow, uintptr_t dq_acc, uintptr_t stream) {
    const AttentionParams p = cuda_attention_params(params, 11);
    const bool deterministic = py::cast<int64_t>(params[10]) != 0;
    const bool has_mask = p.has_mask != 0;
    py::gil_scoped_release nogil;
    cuda::attention_backward(p, static_cast<DType>(dtype), ptr<const void>(q), ptr<const void>(k), ptr<const void>(v),
                             has_mask ? ptr<const void>(mask) : nullptr, has_mask ? ptr<const int64_t>(moff) : nullptr,
                             ptr<const void>(out), ptr<const void>(lse), ptr<const void>(dout), ptr<void>(dq),
                             ptr<void>(dk), ptr<void>(dv), ptr<void>(drow), dq_acc ? ptr<void>(dq_acc) : nullptr,
                             deterministic, stream);
  });
}

DK_REGISTER_BINDINGS(register_attention);

}  // namespace
}  // namespace dk::bind
