#pragma once
// A 64-bit fingerprint of a byte buffer, for detecting that an array saved by a forward pass
// (for its backward) was modified in place in between. Not cryptographic: any change to a single
// 8-byte word always changes it; other changes go unnoticed with probability about 2^-64.
#include <cstdint>

namespace dk::cpu {

uint64_t fingerprint(const void* data, int64_t nbytes);

}  // namespace dk::cpu
