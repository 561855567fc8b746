// Bindings for the CUDA LSTM: device pointers (None, or 0, for an absent optional array), a dtype
// code and cupy's stream in; the launches run without the GIL. Shapes were validated in Python.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "bindings/cuda_pointers.h"
#include "bindings/lstm_fields.h"
#include "bindings/registry.h"
#include "cuda/lstm/lstm.h"

namespace dk::bind {
namespace {

namespace py = pybind11;
using Ptr = uintptr_t;
using OptPtr = OptionalPtr;

const char* kForwardDoc = R"(Forward over a (T, B, I) sequence (a cell is T = 1) on `stream`.

params: dict with the LstmParams fields T, B, I, H; dtype: deepkern's dtype code. Arrays are device pointers of the
element type, C-contiguous: x (T, B, I), h0, c0 (B, H) or None (zeros), w_ih (4H, I), w_hh (4H, H),
b_ih, b_hh (4H,) or None; outputs y (T, B, H), hT, cT (B, H); gates (T, B, 4H), xh (T, B, I+H) and
cs (T+1, B, H) for a backward (all three or None). Workspaces: proj (T*B, 4H) in the accumulator
type (float32 for float16/float32), cbuf (2, B, H) when cs is None. The recurrence is the
persistent kernel where it fits, else one launch per step (see lstm_path).)";

const char* kBackwardDoc = R"(Backward through time from a forward's gates, xh and cs, on `stream`.

dy (T, B, H), dhT, dcT (B, H) may be None (zeros). Writes dx (T, B, I), dw_ih (4H, I), dw_hh (4H, H),
and dh0, dc0 (B, H), db (4H,) where not None. Workspaces: dgates (T*B, 4H) of the element type,
dcbuf (2, B, H) in the accumulator type.)";

const char* kPathDoc = R"(The recurrence an lstm_forward (backward=False) or lstm_backward call with
these shapes runs: a dict with persistent (the choice), fits, blocks, blocks_per_sm, sms, smem (bytes
per block) and why (why it does not fit). DEEPKERN_LSTM_PERSISTENT=0/1 forces the per-step /
persistent path (1 raises RuntimeError where the persistent kernel does not fit).)";

void register_lstm(py::module_& m) {
  m.def(
      "lstm_forward",
      [](py::dict params, int dtype, Ptr x, OptPtr h0, OptPtr c0, Ptr w_ih, Ptr w_hh, OptPtr b_ih, OptPtr b_hh, Ptr y,
         Ptr hT, Ptr cT, OptPtr gates, OptPtr xh, OptPtr cs, Ptr proj, OptPtr cbuf, uintptr_t stream) {
        const LstmParams p = lstm_params(params);
        const char* op = "lstm_forward";
        const void* xp = required_ptr<const void>(x, op, "x");
        const void* wi = required_ptr<const void>(w_ih, op, "w_ih");
        const void* wh = required_ptr<const void>(w_hh, op, "w_hh");
        void* yp = required_ptr<void>(y, op, "y");
        void* hp = required_ptr<void>(hT, op, "hT");
        void* cp = required_ptr<void>(cT, op, "cT");
        void* pp = required_ptr<void>(proj, op, "proj");
        void *g = device_ptr<void>(gates), *xhp = device_ptr<void>(xh), *csp = device_ptr<void>(cs),
             *cb = device_ptr<void>(cbuf);
        if ((xhp == nullptr) != (csp == nullptr) || (xhp != nullptr && g == nullptr))
          throw py::value_error("lstm_forward: a context needs gates, xh and cs (all three or none)");
        if (!csp && !cb) throw py::value_error("lstm_forward: 'cbuf' is required when 'cs' is None");
        py::gil_scoped_release nogil;
        cuda::lstm_forward(p, static_cast<DType>(dtype), xp, device_ptr<const void>(h0), device_ptr<const void>(c0), wi,
                           wh, device_ptr<const void>(b_ih), device_ptr<const void>(b_hh), yp, hp, cp, g, xhp, csp, pp,
                           cb, stream);
      },
      kForwardDoc, py::arg("params"), py::arg("dtype"), py::arg("x"), py::arg("h0").none(true),
      py::arg("c0").none(true), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih").none(true),
      py::arg("b_hh").none(true), py::arg("y"), py::arg("hT"), py::arg("cT"), py::arg("gates").none(true),
      py::arg("xh").none(true), py::arg("cs").none(true), py::arg("proj"), py::arg("cbuf").none(true),
      py::arg("stream"));
  m.def(
      "lstm_backward",
      [](py::dict params, int dtype, Ptr xh, Ptr w_ih, Ptr w_hh, Ptr gates, Ptr cs, OptPtr dy, OptPtr dhT, OptPtr dcT,
         Ptr dx, OptPtr dh0, OptPtr dc0, Ptr dw_ih, Ptr dw_hh, OptPtr db, Ptr dgates, Ptr dcbuf, uintptr_t stream) {
        const LstmParams p = lstm_params(params);
        const char* op = "lstm_backward";
        const void* xhp = required_ptr<const void>(xh, op, "xh");
        const void* wi = required_ptr<const void>(w_ih, op, "w_ih");
        const void* wh = required_ptr<const void>(w_hh, op, "w_hh");
        const void* g = required_ptr<const void>(gates, op, "gates");
        const void* csp = required_ptr<const void>(cs, op, "cs");
        void* dxp = required_ptr<void>(dx, op, "dx");
        void* dwi = required_ptr<void>(dw_ih, op, "dw_ih");
        void* dwh = required_ptr<void>(dw_hh, op, "dw_hh");
        void* dg = required_ptr<void>(dgates, op, "dgates");
        void* dcb = required_ptr<void>(dcbuf, op, "dcbuf");
        py::gil_scoped_release nogil;
        cuda::lstm_backward(p, static_cast<DType>(dtype), xhp, wi, wh, g, csp, device_ptr<const void>(dy),
                            device_ptr<const void>(dhT), device_ptr<const void>(dcT), dxp, device_ptr<void>(dh0),
                            device_ptr<void>(dc0), dwi, dwh, device_ptr<void>(db), dg, dcb, stream);
      },
      kBackwardDoc, py::arg("params"), py::arg("dtype"), py::arg("xh"), py::arg("w_ih"), py::arg("w_hh"),
      py::arg("gates"), py::arg("cs"), py::arg("dy").none(true), py::arg("dhT").none(true), py::arg("dcT").none(true),
      py::arg("dx"), py::arg("dh0").none(true), py::arg("dc0").none(true), py::arg("dw_ih"), py::arg("dw_hh"),
      py::arg("db").none(true), py::arg("dgates"), py::arg("dcbuf"), py::arg("stream"));
  m.def(
      "lstm_path",
      [](py::dict params, int dtype, bool backward) {
        const cuda::LstmPathInfo i = cuda::lstm_path(lstm_params(params), static_cast<DType>(dtype), backward);
        py::dict d;
        d["persistent"] = i.persistent;
        d["fits"] = i.fits;
        d["blocks"] = i.blocks;
        d["blocks_per_sm"] = i.blocks_per_sm;
        d["sms"] = i.sms;
        d["smem"] = i.smem;
        d["why"] = i.why;
        return d;
      },
      kPathDoc, py::arg("params"), py::arg("dtype"), py::arg("backward") = false);
}

DK_REGISTER_BINDINGS(register_lstm);

}  // namespace
}  // namespace dk::bind
