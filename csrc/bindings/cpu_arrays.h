#pragma once
// Turning numpy arrays into typed raw pointers for the CPU kernels. The Python layer has
// already made every array C-contiguous with the right dtype; these checks are the last
// guard against a wrong call and raise instead of reading out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/dtype.h"

namespace dk::bind {

namespace py = pybind11;

inline DType float_dtype_of(const py::array& a, const char* name) {
  if (a.dtype().is(py::dtype::of<float>())) return DType::Float32;
  if (a.dtype().is(py::dtype::of<double>())) return DType::Float64;
  throw py::type_error(std::string(name) + ": expected a float32 or float64 array");
}

inline void check_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(name) + ": expected a C-contiguous array");
}

// Kernels dereference T*: a misaligned one (numpy allows it) is undefined behaviour. The Python
// layer copies such arrays (_validate.kernel_layout); this is the last guard.
template <typename T>
void check_aligned(const py::array& a, const char* name) {
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
    throw py::value_error(std::string(name) + ": expected an array aligned to its element size");
}

template <typename T>
const T* in_ptr(const py::array& a, const char* name) {
  check_contiguous(a, name);
  check_aligned<T>(a, name);
  if (!a.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(name) + ": dtype does not match the other arrays");
  return static_cast<const T*>(a.data());
}

template <typename T>
T* out_ptr(py::array& a, const char* name) {
  check_contiguous(a, name);
  check_aligned<T>(a, name);
  if (!a.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(name) + ": dtype does not match the other arrays");
  if (!a.writeable()) throw py::value_error(std::string(name) + ": output array is read-only");
  return static_cast<T*>(a.mutable_data());
}

inline void check_size(const py::array& a, int64_t expected, const char* name) {
  if (static_cast<int64_t>(a.size()) != expected)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(expected) + " elements, got " +
                          std::to_string(a.size()));
}

inline std::vector<int64_t> int_params(const py::sequence& s, size_t n, const char* what) {
  if (py::len(s) != n) throw py::value_error(std::string(what) + ": expected " + std::to_string(n) + " ints");
  std::vector<int64_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = s[i].cast<int64_t>();
  return v;
}

// The fields of a params dict (the Python layer builds one dict per call, one key per field of the
// params struct). Keys are interned once per call site, so each lookup is a pointer-hash probe.
struct FieldNames {
  std::vector<const char*> names;
  std::vector<PyObject*> keys;  // interned, immortal for the module's lifetime
  FieldNames(std::initializer_list<const char*> ns) : names(ns) {
    for (const char* n : names) keys.push_back(PyUnicode_InternFromString(n));
  }
};

// out[i] = d[names[i]]; a missing or non-integer field is a ValueError naming it.
inline void read_fields(const py::dict& d, const FieldNames& f, int64_t* const* out, const char* what) {
  for (size_t i = 0; i < f.keys.size(); ++i) {
    PyObject* v = PyDict_GetItemWithError(d.ptr(), f.keys[i]);  // borrowed
    if (!v) {
      PyErr_Clear();
      throw py::value_error(std::string(what) + ": missing field '" + f.names[i] + "'");
    }
    const long long r = PyLong_Check(v) ? PyLong_AsLongLong(v) : -1;
    if (!PyLong_Check(v) || (r == -1 && PyErr_Occurred())) {
      PyErr_Clear();
      throw py::value_error(std::string(what) + ": field '" + f.names[i] + "' must be an int in int64's range");
    }
    *out[i] = int64_t(r);
  }
}

}  // namespace dk::bind
