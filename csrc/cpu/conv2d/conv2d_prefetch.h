#pragma once
// Software prefetch of the next sample's input rows, spread over the current sample's GEMM tiles
// (conv2d_shifted_plan.h): the next sample's copy into the phase buffer then reads cache, not
// memory, and the memory reads overlap the arithmetic instead of preceding it.
#include <cstdint>

namespace dk::cpu::shifted_detail {

template <typename T>
class InputPrefetch {
 public:
  // Rows h of each of C channels (H x W each) of x_n with rows[h] != 0, over `steps` calls of step().
  void start(const T* x_n, int64_t C, int64_t H, int64_t W, const char* rows, int64_t used_rows, int64_t steps) {
    x_ = reinterpret_cast<const char*>(x_n);
    C_ = C, H_ = H, row_bytes_ = W * int64_t(sizeof(T)), rows_ = rows;
    c_ = 0, h_ = -1, at_ = end_ = nullptr;
    const int64_t lines = C * used_rows * (row_bytes_ / 64 + 2);
    per_step_ = lines / (steps > 0 ? steps : 1) + 1;
  }
  void stop() { x_ = nullptr; }
  void step() {
    for (int64_t i = 0; i < per_step_ && x_; ++i) {
      if (at_ >= end_ && !next_row()) {
        x_ = nullptr;
        return;
      }
      __builtin_prefetch(at_, 0, 1);
      at_ += 64;
    }
  }

 private:
  bool next_row() {
    for (;;) {
      if (++h_ == H_) {
        h_ = 0;
        if (++c_ == C_) return false;
      }
      if (!rows_[h_]) continue;
      const char* r = x_ + (c_ * H_ + h_) * row_bytes_;
      at_ = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(r) & ~uintptr_t(63));
      end_ = r + row_bytes_;
      return true;
    }
  }
  const char* x_ = nullptr;
  const char* rows_ = nullptr;
  const char *at_ = nullptr, *end_ = nullptr;
  int64_t C_ = 0, H_ = 0, row_bytes_ = 0, c_ = 0, h_ = 0, per_step_ = 0;
};

}  // namespace dk::cpu::shifted_detail
