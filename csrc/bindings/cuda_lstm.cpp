// Bindings for the CUDA LSTM: device pointers (0 = an absent optional array), a dtype code and
// cupy's stream in; the launches run without the GIL. Shapes were validated in Python.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

#include "bindings/registry.h"
#include "cuda/lstm/lstm.h"

namespace dk::bind {
namespace {

namespace py = pybind11;

LstmParams lstm_params(const py::sequence& s) {
  if (py::len(s) != 4) throw py::value_error("lstm params: expected 4 ints (T, B, I, H)");
  std::vector<int64_t> v(4);
  for (size_t i = 0; i < 4; ++i) {
    v[i] = s[i].cast<int64_t>();
    if (v[i] < 1) throw py::value_error("lstm params: every size must be >= 1");
  }
  return LstmParams{v[0], v[1], v[2], v[3]};
}

template <typename P>
P* ptr(uintptr_t a) {
  return reinterpret_cast<P*>(a);
}

void register_lstm(py::module_& m) {
  m.def("lstm_forward",
        [](py::sequence params, int dtype, uintptr_t x, uintptr_t h0, uintptr_t c0, uintptr_t w_ih, uintptr_t w_hh,
           uintptr_t b_ih, uintptr_t b_hh, uintptr_t y, uintptr_t hT, uintptr_t cT, uintptr_t gates, uintptr_t xh,
           uintptr_t cs, uintptr_t proj, uintptr_t cbuf, uintptr_t stream) {
          const LstmParams p = lstm_params(params);
          if (!x || !w_ih || !w_hh || !y || !hT || !cT || !proj)
            throw py::value_error("lstm_forward: a required array is missing");
          if ((xh == 0) != (cs == 0) || (xh != 0 && gates == 0))
            throw py::value_error("lstm_forward: a context needs gates, xh and cs");
          if (cs == 0 && cbuf == 0) throw py::value_error("lstm_forward: inference needs the cbuf workspace");
          py::gil_scoped_release nogil;
          cuda::lstm_forward(p, static_cast<DType>(dtype), ptr<const void>(x), ptr<const void>(h0), ptr<const void>(c0),
                             ptr<const void>(w_ih), ptr<const void>(w_hh), ptr<const void>(b_ih), ptr<const void>(b_hh),
                             ptr<void>(y), ptr<void>(hT), ptr<void>(cT), ptr<void>(gates), ptr<void>(xh), ptr<void>(cs),
                             ptr<void>(proj), ptr<void>(cbuf), stream);
        });
  m.def("lstm_backward", [](py::sequence params, int dtype, uintptr_t xh, uintptr_t w_ih, uintptr_t w_hh,
                            uintptr_t gates, uintptr_t cs, uintptr_t dy, uintptr_t dhT, uintptr_t dcT, uintptr_t dx,
                            uintptr_t dh0, uintptr_t dc0, uintptr_t dw_ih, uintptr_t dw_hh, uintptr_t db,
                            uintptr_t dgates, uintptr_t dcbuf, uintptr_t stream) {
    const LstmParams p = lstm_params(params);
    if (!xh || !w_ih || !w_hh || !gates || !cs || !dx || !dw_ih || !dw_hh || !dgates || !dcbuf)
      throw py::value_error("lstm_backward: a required array is missing");
    py::gil_scoped_release nogil;
    cuda::lstm_backward(p, static_cast<DType>(dtype), ptr<const void>(xh), ptr<const void>(w_ih), ptr<const void>(w_hh),
                        ptr<const void>(gates), ptr<const void>(cs), ptr<const void>(dy), ptr<const void>(dhT),
                        ptr<const void>(dcT), ptr<void>(dx), ptr<void>(dh0), ptr<void>(dc0), ptr<void>(dw_ih),
                        ptr<void>(dw_hh), ptr<void>(db), ptr<void>(dgates), ptr<void>(dcbuf), stream);
  });
}

DK_REGISTER_BINDINGS(register_lstm);

}  // namespace
}  // namespace dk::bind
