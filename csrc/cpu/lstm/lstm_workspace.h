#pragma once
// Scratch memory of the LSTM kernels, kept per calling thread and reused from call to call.
// A training loop calls the same shapes over and over; a fresh multi-megabyte allocation each
// time comes back from the OS as new pages, and faulting them in (~1 us per 4 KiB page) cost
// several percent of a T=64 B=32 H=256 step. Buffers only grow; they are freed when the
// thread exits. Slots separate the buffers one call holds at the same time.
#include <cstddef>
#include <cstdint>

namespace dk::cpu {

enum class LstmSlot : int { Gates, DGates, State, Rec, PackA, PackW0, PackW1, Count };

// At least `count` elements of T, 64-byte aligned, contents unspecified.
void* lstm_workspace_bytes(LstmSlot slot, size_t bytes);

template <typename T>
T* lstm_workspace(LstmSlot slot, int64_t count) {
  return static_cast<T*>(lstm_workspace_bytes(slot, sizeof(T) * static_cast<size_t>(count > 0 ? count : 1)));
}

}  // namespace dk::cpu
