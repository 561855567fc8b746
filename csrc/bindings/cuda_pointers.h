#pragma once
// Device pointers across the boundary: the Python layer passes cupy's data.ptr (an int) for each
// array and None for an absent optional one, which the kernels see as nullptr.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>

namespace dk::bind {

using OptionalPtr = std::optional<uintptr_t>;

template <typename P>
P* device_ptr(uintptr_t a) {
  return reinterpret_cast<P*>(a);
}

template <typename P>
P* device_ptr(const OptionalPtr& a) {
  return a ? reinterpret_cast<P*>(*a) : nullptr;
}

}  // namespace dk::bind
