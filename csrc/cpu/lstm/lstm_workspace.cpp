// Per-thread LSTM scratch buffers that only grow (lstm_workspace.h).
#include "cpu/lstm/lstm_workspace.h"

#include <cstdlib>
#include <memory>
#include <new>

namespace dk::cpu {

namespace {

struct Buffer {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> ptr;
  size_t bytes = 0;
};

}  // namespace

void* lstm_workspace_bytes(LstmSlot slot, size_t bytes) {
  static thread_local Buffer buffers[static_cast<int>(LstmSlot::Count)];
  Buffer& b = buffers[static_cast<int>(slot)];
  if (bytes > b.bytes) {
    bytes = (bytes + 4095) / 4096 * 4096;
    b.ptr.reset();  // release first: the old and new buffer need not coexist
    b.bytes = 0;
    b.ptr.reset(std::aligned_alloc(64, bytes));
    if (!b.ptr) throw std::bad_alloc();
    b.bytes = bytes;
  }
  return b.ptr.get();
}

}  // namespace dk::cpu
