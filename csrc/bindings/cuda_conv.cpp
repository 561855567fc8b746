// Bindings for conv2d and the plain GEMM on the GPU: device pointers (0 = absent), a dtype code and
// a stream in; launch without the GIL.
//   conv2d_forward(params16, dtype, x, w, b, y, stream)       params16 = the 15 conv params + allow_tf32
//   conv2d_backward_workspace(params16, dtype) -> accumulators the backward needs (0: none)
//   conv2d_backward(params16, dtype, x, w, dy, dx, dw, db, ws, stream)
//   gemm(params, dtype, A, B, C, stream)   params = (M, N, K, lda, ldb, ldc, trans_a, trans_b, alpha, beta, allow_tf32)
#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

#include "bindings/registry.h"
#include "cuda/conv2d/conv2d.h"
#include "cuda/gemm/gemm.h"

namespace dk::bind {
namespace {

namespace py = pybind11;

struct ConvCall {
  Conv2dParams p;
  bool tf32;
};

ConvCall conv_call(const py::sequence& s) {
  if (py::len(s) != 16) throw py::value_error("conv2d params: expected 15 ints and allow_tf32");
  std::vector<int64_t> v(16);
  for (size_t i = 0; i < 16; ++i) v[i] = s[i].cast<int64_t>();
  return {Conv2dParams{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14]},
          v[15] != 0};
}

template <typename P>
P* ptr(uintptr_t a) {
  return reinterpret_cast<P*>(a);
}

void register_conv(py::module_& m) {
  m.def("conv2d_forward",
        [](py::sequence params, int dtype, uintptr_t x, uintptr_t w, uintptr_t b, uintptr_t y, uintptr_t stream) {
          auto c = conv_call(params);
          py::gil_scoped_release nogil;
          cuda::conv2d_forward(c.p, static_cast<DType>(dtype), c.tf32, ptr<const void>(x), ptr<const void>(w),
                               ptr<const void>(b), ptr<void>(y), stream);
        });
  m.def("conv2d_backward_workspace", [](py::sequence params, int dtype) {
    auto c = conv_call(params);
    return cuda::conv2d_backward_workspace(c.p, static_cast<DType>(dtype), c.tf32);
  });
  m.def("conv2d_backward", [](py::sequence params, int dtype, uintptr_t x, uintptr_t w, uintptr_t dy, uintptr_t dx,
                              uintptr_t dw, uintptr_t db, uintptr_t ws, uintptr_t stream) {
    auto c = conv_call(params);
    py::gil_scoped_release nogil;
    cuda::conv2d_backward(c.p, static_cast<DType>(dtype), c.tf32, ptr<const void>(x), ptr<const void>(w),
                          ptr<const void>(dy), ptr<void>(dx), ptr<void>(dw), ptr<void>(db), ptr<void>(ws), stream);
  });
  m.def("gemm", [](py::sequence params, int dtype, uintptr_t a, uintptr_t b, uintptr_t c, uintptr_t stream) {
    if (py::len(params) != 11)
      throw py::value_error(
          "gemm params: expected (M, N, K, lda, ldb, ldc, trans_a, trans_b, alpha, beta, allow_tf32)");
    cuda::GemmParams p{params[0].cast<int64_t>(), params[1].cast<int64_t>(), params[2].cast<int64_t>(),
                       params[3].cast<int64_t>(), params[4].cast<int64_t>(), params[5].cast<int64_t>(),
                       params[6].cast<bool>(),    params[7].cast<bool>(),    params[8].cast<double>(),
                       params[9].cast<double>()};
    const bool tf32 = params[10].cast<bool>();
    py::gil_scoped_release nogil;
    cuda::gemm_plain(p, static_cast<DType>(dtype), tf32, ptr<const void>(a), ptr<const void>(b), ptr<void>(c), stream);
  });
}

DK_REGISTER_BINDINGS(register_conv);

}  // namespace
}  // namespace dk::bind
