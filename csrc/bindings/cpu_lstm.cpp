// Bindings for the LSTM sequence kernels (a cell is T = 1): a params dict (bindings/lstm_fields.h)
// and arrays in, kernel runs without the GIL. Optional arrays arrive as None and become nullptr.
#include "bindings/cpu_arrays.h"
#include "bindings/lstm_fields.h"
#include "bindings/registry.h"
#include "cpu/lstm/lstm.h"

namespace dk::bind {
namespace {

template <typename T>
void fwd(const LstmParams& p, const py::array& x, const py::object& h0, const py::object& c0, const py::array& w_ih,
         const py::array& w_hh, const py::object& b_ih, const py::object& b_hh, py::array& y, py::array& hT,
         py::array& cT, const py::object& gates, const py::object& xh, const py::object& cs) {
  const int64_t BH = p.B * p.H, G = p.G();
  const T* xp = sized_in<T>(x, p.rows() * p.I, "x");
  const T* h0p = optional_in<T>(h0, BH, "h0");
  const T* c0p = optional_in<T>(c0, BH, "c0");
  const T* wip = sized_in<T>(w_ih, G * p.I, "w_ih");
  const T* whp = sized_in<T>(w_hh, G * p.H, "w_hh");
  const T* bip = optional_in<T>(b_ih, G, "b_ih");
  const T* bhp = optional_in<T>(b_hh, G, "b_hh");
  T* yp = sized_out<T>(y, p.T * BH, "y");
  T* hTp = sized_out<T>(hT, BH, "hT");
  T* cTp = sized_out<T>(cT, BH, "cT");
  T* gp = optional_out<T>(gates, p.rows() * G, "gates");
  T* xhp = optional_out<T>(xh, p.rows() * (p.I + p.H), "xh");
  T* csp = optional_out<T>(cs, (p.T + 1) * BH, "cs");
  if ((xhp == nullptr) != (csp == nullptr) || (xhp != nullptr && gp == nullptr))
    throw py::value_error("lstm_forward: a context needs gates, xh and cs");
  KernelCall call;
  cpu::lstm_forward<T>(p, xp, h0p, c0p, wip, whp, bip, bhp, yp, hTp, cTp, gp, xhp, csp);
}

template <typename T>
void bwd(const LstmParams& p, const py::array& xh, const py::array& w_ih, const py::array& w_hh, const py::array& gates,
         const py::array& cs, const py::object& dy, const py::object& dhT, const py::object& dcT, py::array& dx,
         const py::object& dh0, const py::object& dc0, py::array& dw_ih, py::array& dw_hh, const py::object& db) {
  const int64_t BH = p.B * p.H, G = p.G();
  const T* xhp = sized_in<T>(xh, p.rows() * (p.I + p.H), "xh");
  const T* wip = sized_in<T>(w_ih, G * p.I, "w_ih");
  const T* whp = sized_in<T>(w_hh, G * p.H, "w_hh");
  const T* gp = sized_in<T>(gates, p.rows() * G, "gates");
  const T* csp = sized_in<T>(cs, (p.T + 1) * BH, "cs");
  const T* dyp = optional_in<T>(dy, p.T * BH, "dy");
  const T* dhTp = optional_in<T>(dhT, BH, "dhT");
  const T* dcTp = optional_in<T>(dcT, BH, "dcT");
  T* dxp = sized_out<T>(dx, p.rows() * p.I, "dx");
  T* dh0p = optional_out<T>(dh0, BH, "dh0");
  T* dc0p = optional_out<T>(dc0, BH, "dc0");
  T* dwip = sized_out<T>(dw_ih, G * p.I, "dw_ih");
  T* dwhp = sized_out<T>(dw_hh, G * p.H, "dw_hh");
  T* dbp = optional_out<T>(db, G, "db");
  KernelCall call;
  cpu::lstm_backward<T>(p, xhp, wip, whp, gp, csp, dyp, dhTp, dcTp, dxp, dh0p, dc0p, dwip, dwhp, dbp);
}

void register_lstm(py::module_& m) {
  m.def(
      "lstm_forward",
      [](py::dict params, py::array x, py::object h0, py::object c0, py::array w_ih, py::array w_hh, py::object b_ih,
         py::object b_hh, py::array y, py::array hT, py::array cT, py::object gates, py::object xh, py::object cs) {
        auto p = lstm_params(params);
        if (float_dtype_of(x, "x") == DType::Float32)
          fwd<float>(p, x, h0, c0, w_ih, w_hh, b_ih, b_hh, y, hT, cT, gates, xh, cs);
        else
          fwd<double>(p, x, h0, c0, w_ih, w_hh, b_ih, b_hh, y, hT, cT, gates, xh, cs);
      },
      "LSTM over a sequence into y, hT, cT; gates, xh, cs (saved for the backward) may be None.", py::arg("params"),
      py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
      py::arg("y"), py::arg("hT"), py::arg("cT"), py::arg("gates"), py::arg("xh"), py::arg("cs"));
  m.def(
      "lstm_backward",
      [](py::dict params, py::array xh, py::array w_ih, py::array w_hh, py::array gates, py::array cs, py::object dy,
         py::object dhT, py::object dcT, py::array dx, py::object dh0, py::object dc0, py::array dw_ih, py::array dw_hh,
         py::object db) {
        auto p = lstm_params(params);
        if (float_dtype_of(xh, "xh") == DType::Float32)
          bwd<float>(p, xh, w_ih, w_hh, gates, cs, dy, dhT, dcT, dx, dh0, dc0, dw_ih, dw_hh, db);
        else
          bwd<double>(p, xh, w_ih, w_hh, gates, cs, dy, dhT, dcT, dx, dh0, dc0, dw_ih, dw_hh, db);
      },
      "LSTM backpropagation through time from the forward's saved xh, gates, cs; None where absent.", py::arg("params"),
      py::arg("xh"), py::arg("w_ih"), py::arg("w_hh"), py::arg("gates"), py::arg("cs"), py::arg("dy"), py::arg("dhT"),
      py::arg("dcT"), py::arg("dx"), py::arg("dh0"), py::arg("dc0"), py::arg("dw_ih"), py::arg("dw_hh"), py::arg("db"));
}

DK_REGISTER_BINDINGS(register_lstm);

}  // namespace
}  // namespace dk::bind
