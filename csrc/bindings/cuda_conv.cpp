// Bindings for conv2d and the plain GEMM on the GPU: a params dict (the CPU bindings' parser), a dtype
// code, device pointers (None or 0 for an absent optional array) and a stream in; launch without the GIL.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "bindings/conv_fields.h"
#include "bindings/cuda_pointers.h"
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

// functional/conv.py's _conv_params dict plus allow_tf32 (0 or 1).
ConvCall conv_call(const py::dict& d) {
  static const FieldNames tf32_name{"allow_tf32"};
  int64_t tf32 = 0;
  int64_t* fields[] = {&tf32};
  read_fields(d, tf32_name, fields, "conv2d params");
  return ConvCall{conv_params(d), tf32 != 0};
}

struct GemmCall {
  cuda::GemmParams p;
  bool tf32;
};

// nn/_matmul.py's dict: one key per GemmParams field plus allow_tf32.
GemmCall gemm_call(const py::dict& d) {
  static const FieldNames ints{"M", "N", "K", "lda", "ldb", "ldc", "trans_a", "trans_b", "allow_tf32"};
  static const FieldNames reals{"alpha", "beta"};
  int64_t M, N, K, lda, ldb, ldc, ta, tb, tf32;
  double alpha, beta;
  int64_t* int_fields[] = {&M, &N, &K, &lda, &ldb, &ldc, &ta, &tb, &tf32};
  double* real_fields[] = {&alpha, &beta};
  read_fields(d, ints, int_fields, "gemm params");
  read_fields(d, reals, real_fields, "gemm params");
  return GemmCall{cuda::GemmParams{M, N, K, lda, ldb, ldc, ta != 0, tb != 0, alpha, beta}, tf32 != 0};
}

void register_conv(py::module_& m) {
  m.def(
      "conv2d_forward",
      [](const py::dict& params, int dtype, uintptr_t x, uintptr_t w, std::optional<uintptr_t> b, uintptr_t y,
         uintptr_t stream) {
        auto c = conv_call(params);
        auto xp = required_ptr<const void>(x, "conv2d_forward", "x");
        auto wp = required_ptr<const void>(w, "conv2d_forward", "w");
        auto yp = required_ptr<void>(y, "conv2d_forward", "y");
        py::gil_scoped_release nogil;
        cuda::conv2d_forward(c.p, static_cast<DType>(dtype), c.tf32, xp, wp, device_ptr<const void>(b), yp, stream);
      },
      py::arg("params"), py::arg("dtype"), py::arg("x"), py::arg("w"), py::arg("b"), py::arg("y"), py::arg("stream"),
      "y = conv2d(x, w) + b on the GPU (groups included). params: the conv2d params dict (N, C, H, W, K, kh, kw,\n"
      "Ho, Wo, sh, sw, ph, pw, dh, dw, G) plus allow_tf32; b None (or 0) for no bias.");
  m.def(
      "conv2d_backward_workspace",
      [](const py::dict& params, int dtype) {
        auto c = conv_call(params);
        return cuda::conv2d_backward_workspace(c.p, static_cast<DType>(dtype), c.tf32);
      },
      py::arg("params"), py::arg("dtype"),
      "Accumulators (float32; float64 for float64) that conv2d_backward's split-K weight gradient needs; 0: none.");
  m.def(
      "conv2d_backward",
      [](const py::dict& params, int dtype, uintptr_t x, uintptr_t w, uintptr_t dy, std::optional<uintptr_t> dx,
         std::optional<uintptr_t> dw, std::optional<uintptr_t> db, std::optional<uintptr_t> ws, uintptr_t stream) {
        auto c = conv_call(params);
        auto xp = required_ptr<const void>(x, "conv2d_backward", "x");
        auto wp = required_ptr<const void>(w, "conv2d_backward", "w");
        auto dyp = required_ptr<const void>(dy, "conv2d_backward", "dy");
        py::gil_scoped_release nogil;
        cuda::conv2d_backward(c.p, static_cast<DType>(dtype), c.tf32, xp, wp, dyp, device_ptr<void>(dx),
                              device_ptr<void>(dw), device_ptr<void>(db), device_ptr<void>(ws), stream);
      },
      py::arg("params"), py::arg("dtype"), py::arg("x"), py::arg("w"), py::arg("dy"), py::arg("dx"), py::arg("dw"),
      py::arg("db"), py::arg("ws"), py::arg("stream"),
      "dx, dw, db of conv2d on the GPU into the given buffers (None or 0: not computed); ws: the\n"
      "conv2d_backward_workspace accumulators, or None when that is 0.");
  m.def(
      "gemm",
      [](const py::dict& params, int dtype, uintptr_t a, uintptr_t b, uintptr_t c, uintptr_t stream) {
        const GemmCall g = gemm_call(params);
        auto ap = required_ptr<const void>(a, "gemm", "a");
        auto bp = required_ptr<const void>(b, "gemm", "b");
        auto cp = required_ptr<void>(c, "gemm", "c");
        py::gil_scoped_release nogil;
        cuda::gemm_plain(g.p, static_cast<DType>(dtype), g.tf32, ap, bp, cp, stream);
      },
      py::arg("params"), py::arg("dtype"), py::arg("a"), py::arg("b"), py::arg("c"), py::arg("stream"),
      "C = alpha * op(A) @ op(B) + beta * C on the GPU; params: dict with the GemmParams fields M, N, K,\n"
      "lda, ldb, ldc, trans_a, trans_b (ints), alpha, beta (reals) and allow_tf32 (0 or 1).");
}

DK_REGISTER_BINDINGS(register_conv);

}  // namespace
}  // namespace dk::bind
