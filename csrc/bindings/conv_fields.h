#pragma once
// Conv2dParams from the dict functional/conv.py's _conv_params builds (one key per field); the CPU
// and the CUDA conv bindings both read it here.
#include "bindings/fields.h"
#include "common/conv_params.h"

namespace dk::bind {

inline Conv2dParams conv_params(const py::dict& d) {
  static const FieldNames names{"N",  "C",  "H",  "W",  "K",  "kh", "kw", "Ho",
                                "Wo", "sh", "sw", "ph", "pw", "dh", "dw", "G"};
  Conv2dParams p{};
  int64_t* fields[] = {&p.N,  &p.C,  &p.H,  &p.W,  &p.K,  &p.kh, &p.kw, &p.Ho,
                       &p.Wo, &p.sh, &p.sw, &p.ph, &p.pw, &p.dh, &p.dw, &p.G};
  read_fields(d, names, fields, "conv2d params");
  if (p.G < 1 || p.C % p.G != 0 || p.K % p.G != 0) throw py::value_error("conv2d params: G must divide C and K");
  return p;
}

}  // namespace dk::bind
