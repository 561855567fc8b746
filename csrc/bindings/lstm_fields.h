#pragma once
// LstmParams from the dict functional/lstm.py's _params builds (keys T, B, I, H).
#include "bindings/fields.h"
#include "common/lstm_params.h"

namespace dk::bind {

inline LstmParams lstm_params(const py::dict& d) {
  static const FieldNames names{"T", "B", "I", "H"};
  LstmParams p{};
  int64_t* fields[] = {&p.T, &p.B, &p.I, &p.H};
  read_fields(d, names, fields, "lstm params");
  if (p.T < 1 || p.B < 1 || p.I < 1 || p.H < 1) throw py::value_error("lstm params: every size must be >= 1");
  return p;
}

}  // namespace dk::bind
