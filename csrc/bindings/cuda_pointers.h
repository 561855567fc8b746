#pragma once
// Device pointers across the boundary: the Python layer passes cupy's data.ptr (an int) for each
// array and None for an absent optional one, which the kernels see as nullptr.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>

namespace dk::bind {

using OptionalPtr = std::optional<uintptr_t>;

template <typename P>
P* device_ptr(uintptr_t a) {
  return reinterpret_cast<P*>(a);
}

// A required array: 0 (a null pointer) is a ValueError naming the op and the argument.
template <typename P>
P* required_ptr(uintptr_t a, const char* op, const char* name) {
  if (a == 0) throw pybind11::value_error(std::string(op) + ": '" + name + "' is required (got a null pointer)");
  return reinterpret_cast<P*>(a);
}

template <typename P>
P* device_ptr(const OptionalPtr& a) {
  return a ? reinterpret_cast<P*>(*a) : nullptr;
}

}  // namespace dk::bind
