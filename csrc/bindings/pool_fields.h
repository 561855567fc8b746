#pragma once
// Pool2dParams from the dict functional/pooling.py's _pool_params builds (one key per field);
// the CPU and the CUDA pooling bindings both read it here.
#include "bindings/fields.h"
#include "common/pool_params.h"

namespace dk::bind {

inline Pool2dParams pool_params(const py::dict& d) {
  static const FieldNames names{"N",  "C",  "H",  "W",  "Ho", "Wo", "kh",      "kw",
                                "sh", "sw", "ph", "pw", "dh", "dw", "divisor", "count_pad"};
  Pool2dParams p{};
  int64_t count_pad = 1;
  int64_t* fields[] = {&p.N,  &p.C,  &p.H,  &p.W,  &p.Ho, &p.Wo, &p.kh,      &p.kw,
                       &p.sh, &p.sw, &p.ph, &p.pw, &p.dh, &p.dw, &p.divisor, &count_pad};
  read_fields(d, names, fields, "pool params");
  p.count_pad = count_pad != 0;
  return p;
}

}  // namespace dk::bind
