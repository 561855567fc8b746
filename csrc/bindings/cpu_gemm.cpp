// Internal binding of the library GEMM (tests and benchmarks only; not public API):
//   _cpu.gemm(a, b, c, trans_a, trans_b, alpha, beta, parallel)  computes c = alpha op(a) op(b) + beta c
//   _cpu.gemm_kernel_name(dtype)  the micro-kernel chosen at run time, e.g. "avx512 8x32"
#include <string>

#include "bindings/cpu_arrays.h"
#include "bindings/registry.h"
#include "cpu/gemm/gemm.h"
#include "cpu/gemm/gemm_kernels.h"

namespace dk::bind {
namespace {

template <typename T>
void run(const py::array& a, const py::array& b, py::array& c, bool ta, bool tb, double alpha, double beta,
         bool parallel) {
  if (a.ndim() != 2 || b.ndim() != 2 || c.ndim() != 2) throw py::value_error("gemm: a, b and c must be 2-D");
  const int64_t M = ta ? a.shape(1) : a.shape(0), K = ta ? a.shape(0) : a.shape(1);
  const int64_t Kb = tb ? b.shape(1) : b.shape(0), N = tb ? b.shape(0) : b.shape(1);
  if (K != Kb || c.shape(0) != M || c.shape(1) != N) throw py::value_error("gemm: shapes do not match");
  const T* ap = in_ptr<T>(a, "a");
  const T* bp = in_ptr<T>(b, "b");
  T* cp = out_ptr<T>(c, "c");
  const int64_t lda = std::max<int64_t>(1, a.shape(1)), ldb = std::max<int64_t>(1, b.shape(1));
  const int64_t ldc = std::max<int64_t>(1, N);
  KernelCall call;
  cpu::gemm<T>(ta, tb, M, N, K, T(alpha), ap, lda, bp, ldb, T(beta), cp, ldc, parallel);
}

void register_gemm(py::module_& m) {
  m.def(
      "gemm",
      [](py::array a, py::array b, py::array c, bool ta, bool tb, double alpha, double beta, bool parallel) {
        if (float_dtype_of(c, "c") == DType::Float32)
          run<float>(a, b, c, ta, tb, alpha, beta, parallel);
        else
          run<double>(a, b, c, ta, tb, alpha, beta, parallel);
      },
      "c = alpha * op(a) @ op(b) + beta * c (row-major; beta == 0: c is write-only).", py::arg("a"), py::arg("b"),
      py::arg("c"), py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("alpha") = 1.0,
      py::arg("beta") = 0.0, py::arg("parallel") = true);
  m.def(
      "gemm_kernel_name",
      [](const std::string& dtype) {
        return std::string(dtype == "float64" ? cpu::gemm_kernel<double>().name : cpu::gemm_kernel<float>().name);
      },
      "The GEMM micro-kernel in use for 'float32' or 'float64', e.g. 'avx512 8x32'.", py::arg("dtype"));
}

DK_REGISTER_BINDINGS(register_gemm);

}  // namespace
}  // namespace dk::bind
