#pragma once
// AttentionParams from the dict functional/attention.py's _params builds (one key per field);
// the CPU and the CUDA attention bindings both read it here.
#include "bindings/fields.h"
#include "common/attention_params.h"

namespace dk::bind {

inline AttentionParams attention_params(const py::dict& d) {
  static const FieldNames ints{"BH", "Lq", "Lk", "D", "Dv", "causal", "has_mask", "m_rs", "m_cs"};
  static const FieldNames reals{"scale"};
  AttentionParams p{};
  int64_t* int_fields[] = {&p.BH, &p.Lq, &p.Lk, &p.D, &p.Dv, &p.causal, &p.has_mask, &p.m_rs, &p.m_cs};
  double* real_fields[] = {&p.scale};
  read_fields(d, ints, int_fields, "attention params");
  read_fields(d, reals, real_fields, "attention params");
  return p;
}

}  // namespace dk::bind
