// Bindings for scaled dot-product attention on the CPU: a params dict (bindings/attention_fields.h)
// and arrays in, kernel runs without the GIL. Without a mask (has_mask 0), mask and mask_off are None.
#include "bindings/attention_fields.h"
#include "bindings/cpu_arrays.h"
#include "bindings/registry.h"
#include "cpu/attention/attention.h"

namespace dk::bind {
namespace {

// The mask pointers (null without a mask), checked: every (b, i, j) the mask can address lies inside.
template <typename T>
void mask_ptrs(const AttentionParams& p, const py::object& mask, const py::object& moff, const T** mp,
               const int64_t** op) {
  *mp = nullptr;
  *op = nullptr;
  if (mask.is_none() != moff.is_none() || mask.is_none() == (p.has_mask != 0))
    throw py::value_error("attention: mask and mask_off must both be given exactly when params has_mask is 1");
  if (!p.has_mask) return;
  const py::array m = given_array(mask, "attn_mask"), o = given_array(moff, "mask_off");
  check_size(o, p.BH, "mask_off");
  *mp = in_ptr<T>(m, "attn_mask");
  *op = in_ptr<int64_t>(o, "mask_off");
  const int64_t last = (p.Lq > 0 ? (p.Lq - 1) * p.m_rs : 0) + (p.Lk > 0 ? (p.Lk - 1) * p.m_cs : 0);
  for (int64_t b = 0; b < p.BH; ++b) {
    if ((*op)[b] < 0 || (p.Lq > 0 && p.Lk > 0 && (*op)[b] + last >= static_cast<int64_t>(m.size())))
      throw py::value_error("attn_mask: offsets/strides address elements outside the mask");
  }
}

template <typename T>
void fwd(const AttentionParams& p, const py::array& q, const py::array& k, const py::array& v, const py::object& mask,
         const py::object& moff, py::array& out, py::array& lse) {
  check_size(q, p.BH * p.Lq * p.D, "q");
  check_size(k, p.BH * p.Lk * p.D, "k");
  check_size(v, p.BH * p.Lk * p.Dv, "v");
  check_size(out, p.BH * p.Lq * p.Dv, "out");
  check_size(lse, p.BH * p.Lq, "lse");
  const T *qp = in_ptr<T>(q, "q"), *kp = in_ptr<T>(k, "k"), *vp = in_ptr<T>(v, "v");
  const T* mp;
  const int64_t* op;
  mask_ptrs<T>(p, mask, moff, &mp, &op);
  T* outp = out_ptr<T>(out, "out");
  T* lsep = out_ptr<T>(lse, "lse");
  KernelCall call;
  cpu::attention_forward<T>(p, qp, kp, vp, mp, op, outp, lsep);
}

template <typename T>
void bwd(const AttentionParams& p, const py::array& q, const py::array& k, const py::array& v, const py::object& mask,
         const py::object& moff, const py::array& out, const py::array& lse, const py::array& dout, py::array& dq,
         py::array& dk, py::array& dv) {
  check_size(q, p.BH * p.Lq * p.D, "q");
  check_size(k, p.BH * p.Lk * p.D, "k");
  check_size(v, p.BH * p.Lk * p.Dv, "v");
  check_size(out, p.BH * p.Lq * p.Dv, "out");
  check_size(lse, p.BH * p.Lq, "lse");
  check_size(dout, p.BH * p.Lq * p.Dv, "dout");
  check_size(dq, p.BH * p.Lq * p.D, "dq");
  check_size(dk, p.BH * p.Lk * p.D, "dk");
  check_size(dv, p.BH * p.Lk * p.Dv, "dv");
  const T *qp = in_ptr<T>(q, "q"), *kp = in_ptr<T>(k, "k"), *vp = in_ptr<T>(v, "v");
  const T *outp = in_ptr<T>(out, "out"), *lsep = in_ptr<T>(lse, "lse"), *dop = in_ptr<T>(dout, "dout");
  const T* mp;
  const int64_t* op;
  mask_ptrs<T>(p, mask, moff, &mp, &op);
  T *dqp = out_ptr<T>(dq, "dq"), *dkp = out_ptr<T>(dk, "dk"), *dvp = out_ptr<T>(dv, "dv");
  KernelCall call;
  cpu::attention_backward<T>(p, qp, kp, vp, mp, op, outp, lsep, dop, dqp, dkp, dvp);
}

void register_attention(py::module_& m) {
  m.def(
      "attention_forward",
      [](py::dict params, py::array q, py::array k, py::array v, py::object mask, py::object mask_off, py::array out,
         py::array lse) {
        auto p = attention_params(params);
        if (float_dtype_of(q, "q") == DType::Float32)
          fwd<float>(p, q, k, v, mask, mask_off, out, lse);
        else
          fwd<double>(p, q, k, v, mask, mask_off, out, lse);
      },
      "Scaled dot-product attention forward into out and lse (log-sum-exp per query row).", py::arg("params"),
      py::arg("q"), py::arg("k"), py::arg("v"), py::arg("mask"), py::arg("mask_off"), py::arg("out"), py::arg("lse"));
  m.def(
      "attention_backward",
      [](py::dict params, py::array q, py::array k, py::array v, py::object mask, py::object mask_off, py::array out,
         py::array lse, py::array dout, py::array dq, py::array dk, py::array dv) {
        auto p = attention_params(params);
        if (float_dtype_of(q, "q") == DType::Float32)
          bwd<float>(p, q, k, v, mask, mask_off, out, lse, dout, dq, dk, dv);
        else
          bwd<double>(p, q, k, v, mask, mask_off, out, lse, dout, dq, dk, dv);
      },
      "Attention backward: dq, dk, dv (all written) from the forward's out and lse.", py::arg("params"), py::arg("q"),
      py::arg("k"), py::arg("v"), py::arg("mask"), py::arg("mask_off"), py::arg("out"), py::arg("lse"), py::arg("dout"),
      py::arg("dq"), py::arg("dk"), py::arg("dv"));
  m.def(
      "attention_isa", [](const py::object&) { return std::string(cpu::attention_isa()); },
      "The ISA copy the attention kernels run on ('generic', 'avx2', 'avx512'); one per process, so params "
      "(any value) does not change it.",
      py::arg("params") = py::none());
}

DK_REGISTER_BINDINGS(register_attention);

}  // namespace
}  // namespace dk::bind
