#pragma once
// Turning numpy arrays into typed raw pointers for the CPU kernels. The Python layer has
// already made every array C-contiguous with the right dtype; these checks are the last
// guard against a wrong call and raise instead of reading out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "bindings/fields.h"
#include "common/dtype.h"
#include "cpu/common/parallel.h"

namespace dk::bind {

namespace py = pybind11;

// One CPU kernel call: the GIL released for its length, and its start and end marked for the
// thread team's warm rule (cpu::CallScope, csrc/cpu/common/parallel.h).
struct KernelCall {
  py::gil_scoped_release nogil;
  cpu::CallScope scope;
};

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

// An array of exactly n elements, as a kernel pointer (in: read-only; out: written).
template <typename T>
const T* sized_in(const py::array& a, int64_t n, const char* name) {
  check_size(a, n, name);
  return in_ptr<T>(a, name);
}

template <typename T>
T* sized_out(py::array& a, int64_t n, const char* name) {
  check_size(a, n, name);
  return out_ptr<T>(a, name);
}

// An optional array: None is the kernel's nullptr; otherwise a numpy array (never converted, so the
// pointer stays valid while the caller holds the array), checked as by sized_in / sized_out.
inline py::array given_array(const py::object& o, const char* name) {
  if (!py::isinstance<py::array>(o)) throw py::type_error(std::string(name) + ": expected a numpy array or None");
  return py::reinterpret_borrow<py::array>(o);
}

template <typename T>
const T* optional_in(const py::object& o, int64_t n, const char* name) {
  if (o.is_none()) return nullptr;
  return sized_in<T>(given_array(o, name), n, name);
}

template <typename T>
T* optional_out(const py::object& o, int64_t n, const char* name) {
  if (o.is_none()) return nullptr;
  auto a = given_array(o, name);
  return sized_out<T>(a, n, name);
}

}  // namespace dk::bind
