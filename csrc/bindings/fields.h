#pragma once
// Named parameters across the boundary, for the CPU and the CUDA bindings alike: the Python layer
// passes one dict per call, one key per field of the op's params struct (csrc/common/*_params.h),
// and read_fields fills the struct from it, naming any missing or mistyped field.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace dk::bind {

namespace py = pybind11;

// Keys are interned once per call site, so each lookup is a pointer-hash probe.
struct FieldNames {
  std::vector<const char*> names;
  std::vector<PyObject*> keys;  // interned, immortal for the module's lifetime
  FieldNames(std::initializer_list<const char*> ns) : names(ns) {
    for (const char* n : names) keys.push_back(PyUnicode_InternFromString(n));
  }
};

namespace detail {

inline PyObject* field(const py::dict& d, const FieldNames& f, size_t i, const char* what) {
  PyObject* v = PyDict_GetItemWithError(d.ptr(), f.keys[i]);  // borrowed
  if (!v) {
    PyErr_Clear();
    throw py::value_error(std::string(what) + ": missing field '" + f.names[i] + "'");
  }
  return v;
}

}  // namespace detail

// out[i] = d[names[i]]; a missing or non-integer field is a ValueError naming it.
inline void read_fields(const py::dict& d, const FieldNames& f, int64_t* const* out, const char* what) {
  for (size_t i = 0; i < f.keys.size(); ++i) {
    PyObject* v = detail::field(d, f, i, what);
    const long long r = PyLong_Check(v) ? PyLong_AsLongLong(v) : -1;
    if (!PyLong_Check(v) || (r == -1 && PyErr_Occurred())) {
      PyErr_Clear();
      throw py::value_error(std::string(what) + ": field '" + f.names[i] + "' must be an int in int64's range");
    }
    *out[i] = int64_t(r);
  }
}

// The same for real-valued fields (a Python float or int).
inline void read_fields(const py::dict& d, const FieldNames& f, double* const* out, const char* what) {
  for (size_t i = 0; i < f.keys.size(); ++i) {
    PyObject* v = detail::field(d, f, i, what);
    const double r = (PyFloat_Check(v) || PyLong_Check(v)) ? PyFloat_AsDouble(v) : -1.0;
    if (!(PyFloat_Check(v) || PyLong_Check(v)) || (r == -1.0 && PyErr_Occurred())) {
      PyErr_Clear();
      throw py::value_error(std::string(what) + ": field '" + f.names[i] + "' must be a real number");
    }
    *out[i] = r;
  }
}

}  // namespace dk::bind
