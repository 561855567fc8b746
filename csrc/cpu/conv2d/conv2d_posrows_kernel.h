#pragma once
// The micro-kernel of the positions-as-rows convolution (conv2d_posrows.h), compiled per ISA
// (conv2d_posrows_kernel{,_avx2,_avx512}.cpp): a tile of MR output positions (the rows) by NR output
// channels (the columns, NR = two SIMD vectors), summed over kc taps; MR is per ISA (tile_mr).
#include <cstdint>

#include "cpu/common/isa.h"

DK_ISA_DECLARE(namespace posrows {
  // acc[i][j] = (first ? 0 : C[i*NR + j]) + sum_k x(rows[i] + offs[k]) * Wp[k*NR + j], i < MR, j < NR:
  // each position's input value of tap k is broadcast from its own row pointer (so the positions
  // may be any stride apart), the weights are a packed panel. C is a packed MR x NR tile.
  template <typename T>
  void tile(int64_t kc, const T* Wp, const T* const* rows, const int64_t* offs, T* C, bool first);
  // This copy's tile: MR x NR.
  template <typename T>
  int tile_nr();
  template <typename T>
  int tile_mr();
})

namespace dk::cpu::posrows {

template <typename T>
struct Kernel {
  using Fn = void (*)(int64_t, const T*, const T* const*, const int64_t*, T*, bool);
  Fn fn;
  int nr, mr;
  static const Kernel& get() {
    static const Kernel k{DK_ISA_PICK(Fn, posrows::tile<T>), DK_ISA_PICK(int (*)(), posrows::tile_nr<T>)(),
                          DK_ISA_PICK(int (*)(), posrows::tile_mr<T>)()};
    return k;
  }
};

}  // namespace dk::cpu::posrows
